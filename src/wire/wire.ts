import type { z } from "zod";

/**
 * Reading what crosses the network: every message imgfleet writes to NATS
 * (job messages, usage batches, KV values) or sends between nodes (data-path
 * outcomes) carries `v: 1`, and is checked against its schema where it is
 * read, so a changed shape during a rolling upgrade is refused where it
 * arrives, loudly, instead of failing somewhere far from it.
 *
 * Each schema lives beside the adapter that reads it; this module holds only
 * what they share: the version rule, the parse, and the rejection report
 * (one log line naming the source and the version found, and
 * `imgfleet_wire_rejected_total{source,reason}`).
 *
 * Version rule: `v` absent is version 1. Values written before versions were
 * stamped have exactly the version-1 shape, and some live for a long time
 * (an identity record stays in its bucket until the record changes), so
 * refusing them would lock every tenant out after an upgrade. Any other `v`
 * is refused as unknown.
 */
export const WIRE_VERSION = 1;

/** What was being read; the `source` label of the rejection counter. */
export type WireSource =
  | "job"
  | "usage-batch"
  | "identity"
  | "discovery"
  | "lease"
  | "session"
  | "data-path-outcome"
  | "worker";

/** unreadable: not JSON (or not an object); unknown-version: a `v` this build does not speak; invalid: the fields do not fit. */
export type WireRejectReason = "unreadable" | "unknown-version" | "invalid";

export interface WireRejection {
  source: WireSource;
  /** Where it was read: subject and sequence, bucket and key, or peer. */
  from: string;
  /** The `v` found, as text: "none" when absent, "?" when the message was unreadable. */
  version: string;
  reason: WireRejectReason;
  /** What did not fit: the schema's issues or the JSON error. */
  detail: string;
}

export interface WireLogger {
  error(obj: object, msg: string): void;
}

/** The counter's shape (a prom-client Counter fits), so this module needs no metrics registry. */
export interface WireCounter {
  inc(labels: { source: string; reason: string }): void;
}

/** The same refusal from the same place is logged once per this (it is counted every time). */
const LOG_EVERY_MS = 60_000;
const MAX_REMEMBERED = 1_000;

/**
 * Reports each refused message: counted every time, and logged at error
 * (once a minute for the same source, place, reason and version: a
 * registration read every few seconds must not flood the log).
 */
export class WireRejections {
  readonly #loggedAt = new Map<string, number>();

  constructor(
    private readonly logger: WireLogger,
    private readonly counter?: WireCounter,
    private readonly now: () => number = Date.now,
  ) {}

  reject(r: WireRejection): void {
    this.counter?.inc({ source: r.source, reason: r.reason });
    const key = `${r.source}\u0000${r.from}\u0000${r.reason}\u0000${r.version}`;
    const now = this.now();
    if (now - (this.#loggedAt.get(key) ?? Number.NEGATIVE_INFINITY) < LOG_EVERY_MS) return;
    if (this.#loggedAt.size >= MAX_REMEMBERED) this.#loggedAt.clear();
    this.#loggedAt.set(key, now);
    this.logger.error(
      { wire: r },
      `refused a ${r.source} message from ${r.from} (version ${r.version}, ${r.reason}): ${r.detail}. A node of another imgfleet version wrote it, or something else writes there: check the versions of the fleet's nodes (imgfleet nodes)`,
    );
  }
}

/** For adapters built without the node's reporter (tests, tools): logged, never silent. */
export const LOG_ONLY_WIRE = new WireRejections({ error: (obj, msg) => console.error(msg, obj) });

/** Where a message was read, for the rejection report. */
export interface WireOrigin {
  source: WireSource;
  from: string;
}

export type WireRead<T> = { ok: true; value: T } | { ok: false; rejection: WireRejection };

/**
 * Checks one message: JSON text (or bytes, or an already parsed value),
 * version 1 (or none), then the schema, which sees the message without `v`.
 * Returns the typed value, or the rejection without reporting it.
 */
export function checkWire<S extends z.ZodType>(
  schema: S,
  raw: string | Uint8Array | object,
  origin: WireOrigin,
): WireRead<z.output<S>> {
  const refuse = (reason: WireRejectReason, version: string, detail: string): WireRead<never> => ({
    ok: false,
    rejection: { ...origin, reason, version, detail },
  });
  let value: unknown = raw;
  if (typeof raw === "string" || raw instanceof Uint8Array) {
    try {
      value = JSON.parse(typeof raw === "string" ? raw : Buffer.from(raw).toString("utf8"));
    } catch (error) {
      return refuse("unreadable", "?", `not JSON (${(error as Error).message})`);
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return refuse("unreadable", "?", `not a JSON object (${value === null ? "null" : typeof value})`);
  }
  const { v, ...body } = value as Record<string, unknown>;
  const version = v === undefined ? "none" : JSON.stringify(v);
  if (v !== undefined && v !== WIRE_VERSION) {
    return refuse("unknown-version", version, `this node reads version ${WIRE_VERSION} only`);
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) return refuse("invalid", version, issuesText(parsed.error));
  return { ok: true, value: parsed.data };
}

/** `checkWire`, reporting a rejection: the typed value, or null once reported. */
export function readWire<S extends z.ZodType>(
  schema: S,
  raw: string | Uint8Array | object,
  origin: WireOrigin,
  rejections: WireRejections,
): z.output<S> | null {
  const read = checkWire(schema, raw, origin);
  if (read.ok) return read.value;
  rejections.reject(read.rejection);
  return null;
}

/**
 * `true` only when A and B have the same keys. Strict schemas refuse fields
 * they do not list, so each is checked against its interface with this: a
 * field added to the interface and forgotten in the schema fails to compile
 * instead of making every message that carries it a refused one.
 */
export type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never]
  ? true
  : false;

/** The value as written to the network: `v` first, then its fields. */
export function stamped<T extends object>(value: T): T & { v: typeof WIRE_VERSION } {
  return { v: WIRE_VERSION, ...value };
}

/** At most a few issues, each `path: message`, so a log line stays one line. */
function issuesText(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(message)"}: ${i.message}`);
  const more = error.issues.length > shown.length ? `; and ${error.issues.length - shown.length} more` : "";
  return `${shown.join("; ")}${more}`;
}
