/**
 * Usage metering's vocabulary: what one request yields (a MeterRecord), how
 * records are grouped (per tenant, minute, operation and outcome), and what
 * travels from the spool to the aggregator (a sealed UsageBatch).
 */

import { z } from "zod";
import type { SameKeys } from "../wire/wire.js";

/** The tenant of requests served with `auth.mode: none`. */
export const ANONYMOUS_TENANT = "anonymous";

export const OPERATIONS = ["resize"] as const;
export type Operation = (typeof OPERATIONS)[number];

/** How a request ended, for billing: only `ok` is priced; the others are shown to operators. */
export type Outcome = "ok" | "client_error" | "server_error";

export function outcomeOf(status: number): Outcome {
  if (status < 400) return "ok";
  return status < 500 ? "client_error" : "server_error";
}

/** Who pays for a request: its tenant and the API key it came with (null for anonymous requests). */
export interface Payer {
  tenant: string;
  key: string | null;
}

/**
 * What a request is billed for, measured where the work happened (the
 * resize's result) and handed to the meter as this value, never re-read
 * from the request log. Every field is required: a resize that forgot its
 * CPU does not compile, and the meter refuses one that lacks it at run time.
 */
export interface BilledWork {
  op: Operation;
  inBytes: number;
  outBytes: number;
  inPixels: number;
  outPixels: number;
  inFormat: string | null;
  outFormat: string | null;
  /** Enqueue to a worker taking the job. */
  queueMs: number;
  /** Wall time of the resize in the worker. */
  processMs: number;
  /** CPU (user + system) the worker process spent on the job: process.cpuUsage() around it. */
  cpuMs: number;
}

/** A request answered before any work was done (refused, invalid): its input bytes, nothing else. */
export function unworked(op: Operation, inBytes: number): BilledWork {
  return {
    op,
    inBytes,
    outBytes: 0,
    inPixels: 0,
    outPixels: 0,
    inFormat: null,
    outFormat: null,
    queueMs: 0,
    processMs: 0,
    cpuMs: 0,
  };
}

/** One metered request, success or failure. Field names are short: records are journaled one per request. */
export interface MeterRecord extends Payer, BilledWork {
  /** Request id (X-Request-Id), unique per request. */
  id: string;
  /** Epoch milliseconds when the answer was sent. */
  at: number;
  status: number;
}

const count = z.number().finite().nonnegative();

/**
 * A MeterRecord as the meter accepts it and the aggregator reads it from a
 * batch. Unknown fields are kept (`loose`): records are archived whole, and
 * nothing is summed from a field this version does not know.
 */
const meterRecordShape = {
  id: z.string().min(1),
  tenant: z.string().min(1),
  key: z.string().nullable(),
  at: z.number().int().nonnegative(),
  op: z.enum(OPERATIONS),
  status: z.number().int().min(100).max(599),
  inBytes: count,
  outBytes: count,
  inPixels: count,
  outPixels: count,
  inFormat: z.string().nullable(),
  outFormat: z.string().nullable(),
  queueMs: count,
  processMs: count,
  cpuMs: count,
};
export const MeterRecordSchema = z.looseObject(meterRecordShape);
// Compile-time check that the schema and the interface describe the same record.
const _recordFits: z.ZodType<MeterRecord, z.input<typeof MeterRecordSchema>> = MeterRecordSchema;
// Every billed field is checked by the meter: the schema lists exactly the record's fields.
const _recordKeys: SameKeys<MeterRecord, typeof meterRecordShape> = true;
void [_recordFits, _recordKeys];

/** The sums one group of records adds to the rollups. */
export interface UsageCounters {
  requests: number;
  bytesIn: number;
  bytesOut: number;
  pixelsIn: number;
  pixelsOut: number;
  cpuMs: number;
  processMs: number;
  queueMs: number;
}

/** Records of one tenant, minute, operation and outcome, summed. */
export interface UsageGroup extends UsageCounters {
  tenant: string;
  /** Epoch milliseconds of the minute's start (UTC). */
  minute: number;
  op: Operation;
  outcome: Outcome;
}

/**
 * What the spool seals and the shipper sends: the groups the aggregator adds
 * to the rollups, and the raw records it archives. The id is the dedupe key
 * end to end: however often a batch is delivered, it counts once.
 */
export interface UsageBatch {
  id: string;
  /** The node that metered it. */
  node: string;
  /** Epoch milliseconds when it was sealed. */
  sealedAt: number;
  groups: UsageGroup[];
  records: MeterRecord[];
}

export function emptyCounters(): UsageCounters {
  return {
    requests: 0,
    bytesIn: 0,
    bytesOut: 0,
    pixelsIn: 0,
    pixelsOut: 0,
    cpuMs: 0,
    processMs: 0,
    queueMs: 0,
  };
}

export function addRecord(into: UsageCounters, r: MeterRecord): void {
  addCounters(into, {
    requests: 1,
    bytesIn: r.inBytes,
    bytesOut: r.outBytes,
    pixelsIn: r.inPixels,
    pixelsOut: r.outPixels,
    cpuMs: r.cpuMs,
    processMs: r.processMs,
    queueMs: r.queueMs,
  });
}

export function addCounters(into: UsageCounters, c: UsageCounters): void {
  into.requests += c.requests;
  into.bytesIn += c.bytesIn;
  into.bytesOut += c.bytesOut;
  into.pixelsIn += c.pixelsIn;
  into.pixelsOut += c.pixelsOut;
  into.cpuMs += c.cpuMs;
  into.processMs += c.processMs;
  into.queueMs += c.queueMs;
}

const MINUTE_MS = 60_000;

/** Groups records per tenant, minute, operation and outcome. */
export function groupRecords(records: readonly MeterRecord[]): UsageGroup[] {
  const groups = new Map<string, UsageGroup>();
  for (const r of records) {
    const minute = Math.floor(r.at / MINUTE_MS) * MINUTE_MS;
    const outcome = outcomeOf(r.status);
    const key = `${r.tenant}\u0000${minute}\u0000${r.op}\u0000${outcome}`;
    let group = groups.get(key);
    if (!group) {
      group = { tenant: r.tenant, minute, op: r.op, outcome, ...emptyCounters() };
      groups.set(key, group);
    }
    addRecord(group, r);
  }
  return [...groups.values()];
}
