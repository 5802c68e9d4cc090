import { stat } from "node:fs/promises";
import type { FleetProcessRecord, FleetRole } from "./fleet-state.js";
import type { PostgresServer } from "./postgres-server.js";
import { POSTGRES_SHUTDOWN_TIMEOUT_MS, postgresAnswers } from "./postgres-server.js";
import {
  httpAnswers,
  isAlive,
  logTail,
  type Spawned,
  type StopOutcome,
  signalIfOurs,
  spawnDetached,
  stopProcess,
  waitUntilGone,
  waitUntilReady,
} from "./processes.js";

/**
 * One process of the dev fleet, as tests drive it: its pid, a signal (a
 * crash is SIGKILL), a restart on the same ports and data, and readiness.
 */
export interface FleetProcess {
  readonly name: string;
  readonly role: FleetRole;
  /** nats://, postgres:// or http:// */
  readonly url: string;
  readonly ports: Readonly<Record<string, number>>;
  readonly logFile: string;
  pid(): number;
  /** The same process that was started is still running. */
  running(): boolean;
  /**
   * Sends `signal` (default SIGTERM) and, unless `wait` is false, waits until the
   * process is gone (throws after `timeoutMs`, default 30 s). Pass `wait: false`
   * for signals that do not end it (SIGSTOP, SIGUSR2 for NATS lame duck mode).
   */
  kill(signal?: NodeJS.Signals, options?: { wait?: boolean; timeoutMs?: number }): Promise<void>;
  /** Stops it if it runs (its usual stop signal, then SIGKILL), starts it again and waits until ready. */
  restart(options?: { timeoutMs?: number }): Promise<void>;
  /** Answers its readiness probe now. */
  ready(): Promise<boolean>;
  logTail(lines?: number): Promise<string>;
}

/** How each role is stopped: the signal for a clean stop, and how long before SIGKILL. */
export const STOP_POLICY: Record<FleetRole, { signal: NodeJS.Signals; timeoutMs: number }> = {
  haproxy: { signal: "SIGTERM", timeoutMs: 5_000 },
  // server.shutdownGraceMs (10 s by default) to drain, plus a margin to hand over leases.
  api: { signal: "SIGTERM", timeoutMs: 15_000 },
  worker: { signal: "SIGTERM", timeoutMs: 15_000 },
  control: { signal: "SIGTERM", timeoutMs: 15_000 },
  nats: { signal: "SIGTERM", timeoutMs: 10_000 },
  // SIGINT is PostgreSQL's fast shutdown: roll back open transactions, checkpoint, exit.
  postgres: { signal: "SIGINT", timeoutMs: POSTGRES_SHUTDOWN_TIMEOUT_MS },
};

/** Readiness of a recorded process, for `status` (which holds only fleet.json). */
export function probeRecord(record: FleetProcessRecord, timeoutMs = 1000): Promise<boolean> {
  switch (record.role) {
    case "nats":
      return httpAnswers(
        `http://127.0.0.1:${record.ports.monitor}/healthz?js-enabled-only=true`,
        200,
        timeoutMs,
      );
    case "postgres":
      return postgresAnswers(record.url, timeoutMs).catch(() => false);
    case "api":
      return httpAnswers(`${record.url}/readyz`, 200, timeoutMs);
    default:
      // Workers and control nodes take no client traffic: alive and answering is what counts.
      return httpAnswers(`${record.url}/healthz`, 200, timeoutMs);
  }
}

export interface SpawnSpec {
  name: string;
  role: FleetRole;
  url: string;
  ports: Record<string, number>;
  logFile: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string | undefined;
}

const DEFAULT_KILL_WAIT_MS = 30_000;

/** A process the fleet spawned itself (NATS, imgfleet nodes, HAProxy). */
export class SpawnedMember implements FleetProcess {
  readonly name: string;
  readonly role: FleetRole;
  readonly url: string;
  readonly ports: Readonly<Record<string, number>>;
  readonly logFile: string;
  #spawned: Spawned | undefined;
  /** Log size when the current process started: what it wrote is after this. */
  #logOffset = 0;

  constructor(
    private readonly spec: SpawnSpec,
    /** Called after every (re)spawn, to rewrite fleet.json with the new pid. */
    private readonly changed: () => Promise<void>,
    private readonly readyTimeoutMs: number,
  ) {
    this.name = spec.name;
    this.role = spec.role;
    this.url = spec.url;
    this.ports = spec.ports;
    this.logFile = spec.logFile;
  }

  get logOffset(): number {
    return this.#logOffset;
  }

  pid(): number {
    return this.#spawned?.pid ?? 0;
  }

  running(): boolean {
    return this.#spawned !== undefined && isAlive(this.#spawned.pid, this.#spawned.startTime);
  }

  record(): FleetProcessRecord {
    return {
      name: this.name,
      role: this.role,
      pid: this.pid(),
      ...(this.#spawned?.startTime !== undefined ? { startTime: this.#spawned.startTime } : {}),
      ports: { ...this.ports },
      url: this.url,
      logFile: this.logFile,
    };
  }

  async spawn(): Promise<void> {
    this.#logOffset = await fileSize(this.logFile);
    this.#spawned = await spawnDetached({
      command: this.spec.command,
      args: this.spec.args,
      env: this.spec.env,
      cwd: this.spec.cwd,
      logFile: this.logFile,
    });
    await this.changed();
  }

  /** Waits for its readiness probe (or `probe`, for a stricter condition at fleet start). */
  waitReady(deadline: number, signal?: AbortSignal, probe?: () => Promise<boolean>): Promise<void> {
    const spawned = this.#spawned;
    if (!spawned) throw new Error(`${this.name} was never started`);
    return waitUntilReady({
      name: this.name,
      record: spawned,
      logFile: this.logFile,
      probe: probe ?? (() => this.ready()),
      deadline,
      signal,
    });
  }

  ready(): Promise<boolean> {
    return probeRecord(this.record());
  }

  async kill(signal: NodeJS.Signals = "SIGTERM", options: { wait?: boolean; timeoutMs?: number } = {}) {
    const spawned = this.#spawned;
    if (!spawned || !signalIfOurs(spawned, signal) || options.wait === false) return;
    const timeoutMs = options.timeoutMs ?? DEFAULT_KILL_WAIT_MS;
    if (!(await waitUntilGone(spawned, timeoutMs))) {
      throw new Error(`${this.name} (pid ${spawned.pid}) still runs ${timeoutMs} ms after ${signal}`);
    }
  }

  /** Its usual stop: the role's signal, SIGKILL after the role's timeout. */
  async stop(): Promise<void> {
    if (this.#spawned) await stopProcess(this.#spawned, STOP_POLICY[this.role]);
  }

  async restart(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.stop();
    await this.spawn();
    await this.waitReady(Date.now() + (options.timeoutMs ?? this.readyTimeoutMs));
  }

  logTail(lines?: number): Promise<string> {
    return logTail(this.logFile, lines);
  }
}

/** The fleet's PostgreSQL, started detached by `startPostgresServer`. */
export class PostgresMember implements FleetProcess {
  readonly name = "postgres";
  readonly role = "postgres" as const;
  readonly url: string;
  readonly ports: Readonly<Record<string, number>>;
  readonly logFile: string;

  constructor(
    private readonly server: PostgresServer,
    logFile: string,
    private readonly changed: () => Promise<void>,
  ) {
    this.url = server.url;
    this.ports = { postgres: server.port };
    this.logFile = logFile;
  }

  pid(): number {
    return this.server.pid() ?? 0;
  }

  running(): boolean {
    return this.server.running();
  }

  record(): FleetProcessRecord {
    const startTime = this.server.startTime();
    return {
      name: this.name,
      role: this.role,
      pid: this.pid(),
      ...(startTime !== undefined ? { startTime } : {}),
      ports: { ...this.ports },
      url: this.url,
      logFile: this.logFile,
    };
  }

  async kill(signal: NodeJS.Signals = "SIGINT", options: { wait?: boolean; timeoutMs?: number } = {}) {
    const record = this.record();
    if (!signalIfOurs(record, signal) || options.wait === false) return;
    const timeoutMs = options.timeoutMs ?? DEFAULT_KILL_WAIT_MS;
    if (!(await waitUntilGone(record, timeoutMs))) {
      throw new Error(`postgres (pid ${record.pid}) still runs ${timeoutMs} ms after ${signal}`);
    }
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }

  async restart(): Promise<void> {
    await this.server.restart();
    await this.changed();
  }

  ready(): Promise<boolean> {
    return postgresAnswers(this.url).catch(() => false);
  }

  logTail(lines?: number): Promise<string> {
    return logTail(this.logFile, lines);
  }
}

function fileSize(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

/** Stop order: the load balancer first, then the nodes (they drain against NATS and PostgreSQL), then those. */
const STOP_ORDER: FleetRole[][] = [["haproxy"], ["api", "worker", "control"], ["postgres", "nats"]];

export interface StoppedProcess {
  name: string;
  pid: number;
  outcome: StopOutcome;
}

/** Stops the recorded processes wave by wave; `fast` caps each wait at 5 s (after a failed start). */
export async function stopRecords(records: FleetProcessRecord[], options: { fast?: boolean } = {}) {
  const results: StoppedProcess[] = [];
  for (const roles of STOP_ORDER) {
    const wave = records.filter((r) => roles.includes(r.role));
    results.push(
      ...(await Promise.all(
        wave.map(async (r) => {
          const policy = STOP_POLICY[r.role];
          const timeoutMs = options.fast ? Math.min(policy.timeoutMs, 5_000) : policy.timeoutMs;
          const outcome = await stopProcess(r, { signal: policy.signal, timeoutMs });
          return { name: r.name, pid: r.pid, outcome };
        }),
      )),
    );
  }
  return results;
}
