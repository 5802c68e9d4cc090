import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { jitteredBackoffMs } from "../util/backoff.js";
import { delay } from "../util/time.js";

export interface NatsConnectOptions {
  /** Every server URL of the cluster (`nats://host:4222`); the client fails over between them. */
  servers: string[];
  /** Shown by the server (`/connz`) so an operator can tell nodes apart: use the node id and role. */
  name: string;
  /** Per server and attempt: how long a TCP connect plus the INFO/CONNECT handshake may take. */
  connectTimeoutMs: number;
  /** Passes over the whole server list before giving up; each pass tries every server once. */
  attempts: number;
}

/** First wait between connect attempts; doubles up to RETRY_MAX_MS, ±25% jitter. */
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 5_000;
/**
 * Once connected, the wait between reconnect dials to one server, plus up to
 * RECONNECT_JITTER_MS at random so a fleet that lost its server does not
 * come back in step. Short: a killed server's clients should move within
 * seconds (the Raft election is 4-9 s anyway).
 */
const RECONNECT_WAIT_MS = 1_000;
const RECONNECT_JITTER_MS = 1_000;

/** The first release with the crash-safety fixes and a configurable `sync_interval`. */
const PRODUCTION_MIN_VERSION = "2.10.23";

/** No NATS server answered within the attempts; carries what was tried and the last cause. */
export class NatsUnreachableError extends Error {
  override readonly name = "NatsUnreachableError";
  constructor(
    readonly servers: readonly string[],
    readonly attempts: number,
    readonly elapsedMs: number,
    cause: unknown,
  ) {
    super(
      `could not reach NATS at ${servers.join(", ")} after ${attempts} attempt${attempts === 1 ? "" : "s"} over ${formatSeconds(elapsedMs)}: ${describeCause(cause)}; check that nats-server is running and nats.servers in the config`,
      { cause },
    );
  }
}

/**
 * Connects with bounded retries (exponential backoff with jitter between
 * passes over the server list) and throws one NatsUnreachableError when no
 * server answers. Once connected, the client reconnects forever: a fleet
 * node without NATS can do nothing useful, and giving up would only turn an
 * outage into a restart.
 */
export async function connectNats(options: NatsConnectOptions, logger?: Logger): Promise<NatsConnection> {
  if (options.servers.length === 0) throw new Error("nats.servers is empty: list at least one nats:// URL");
  const attempts = Math.max(1, Math.floor(options.attempts));
  const started = Date.now();
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const nc = await connect({
        servers: options.servers,
        name: options.name,
        timeout: options.connectTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RECONNECT_WAIT_MS,
        reconnectJitter: RECONNECT_JITTER_MS,
      });
      if (logger) watchStatus(nc, logger);
      logger?.info({ server: nc.getServer(), version: nc.info?.version }, "connected to NATS");
      const warning = serverVersionWarning(nc);
      if (warning) logger?.warn({ version: nc.info?.version }, warning);
      return nc;
    } catch (error) {
      lastError = error;
      if (attempt === attempts) break;
      const waitMs = Math.round(jitteredBackoffMs(attempt, RETRY_BASE_MS, RETRY_MAX_MS));
      logger?.warn(
        { servers: options.servers, attempt, attempts, waitMs, err: error },
        "NATS not reachable yet; retrying",
      );
      await delay(waitMs);
    }
  }
  throw new NatsUnreachableError(options.servers, attempts, Date.now() - started, lastError);
}

/**
 * A warning when the connected server is older than production needs, else
 * null. Development on Debian's 2.9.10 is expected; production is not.
 */
export function serverVersionWarning(nc: NatsConnection): string | null {
  const version = nc.info?.version;
  return version === undefined ? null : versionWarning(version);
}

/** The same check on a version string (`"2.9.10"`). */
export function versionWarning(version: string): string | null {
  if (compareVersions(version, PRODUCTION_MIN_VERSION) >= 0) return null;
  return `nats-server ${version} is fine for development; production needs >= ${PRODUCTION_MIN_VERSION} (crash-safety fixes, configurable sync_interval)`;
}

/** Compares dotted versions numerically; a pre-release suffix (`-beta.1`) is ignored. */
function compareVersions(a: string, b: string): number {
  const parse = (v: string) =>
    v
      .split("-")[0]
      ?.split(".")
      .map((n) => Number.parseInt(n, 10) || 0) ?? [];
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const diff = (x[i] ?? 0) - (y[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** Logs disconnects and reconnects until the connection closes. */
function watchStatus(nc: NatsConnection, logger: Logger): void {
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") {
        logger.warn(
          { server: status.server },
          "lost the NATS connection; reconnecting (forever, with jitter)",
        );
      } else if (status.type === "reconnect") {
        logger.info({ server: status.server }, "reconnected to NATS");
      } else if (status.type === "ldm") {
        logger.info({ server: status.server }, "NATS server entering lame-duck mode; moving to another");
      }
    }
  })().catch(() => {
    // The status iterator ends with the connection; nothing to report.
  });
}

/** The innermost cause's code when it has one (ECONNREFUSED), else its message. */
function describeCause(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
    if (!(current.cause instanceof Error)) return current.message;
    current = current.cause;
  }
  return String(current);
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
