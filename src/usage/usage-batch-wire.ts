import { z } from "zod";
import { checkWire, type SameKeys, stamped, type WireOrigin, type WireRead } from "../wire/wire.js";
import { MeterRecordSchema, OPERATIONS, type UsageBatch, type UsageGroup } from "./model.js";

const count = z.number().finite().nonnegative();

/**
 * One group's sums. Strict: every field of a group is added to the rollups,
 * so a counter this version does not know (a newer node billing something
 * new) would be dropped from the bill in silence; the batch is refused
 * instead and waits in its node's spool until the aggregator is upgraded.
 */
const UsageGroupWire = z.strictObject({
  tenant: z.string().min(1),
  minute: z.number().int().nonnegative(),
  op: z.enum(OPERATIONS),
  outcome: z.enum(["ok", "client_error", "server_error"]),
  requests: z.number().int().positive(),
  bytesIn: count,
  bytesOut: count,
  pixelsIn: count,
  pixelsOut: count,
  cpuMs: count,
  processMs: count,
  queueMs: count,
});

/** A sealed batch on the usage stream (version 1). Records keep unknown fields: they are archived whole. */
export const UsageBatchWire = z.object({
  id: z.string().min(1),
  node: z.string().min(1),
  sealedAt: z.number().int().nonnegative(),
  groups: z.array(UsageGroupWire),
  records: z.array(MeterRecordSchema),
});
const _fits: z.ZodType<UsageBatch, z.input<typeof UsageBatchWire>> = UsageBatchWire;
const _groupKeys: SameKeys<UsageGroup, z.infer<typeof UsageGroupWire>> = true;
void [_fits, _groupKeys];

export function encodeUsageBatch(batch: UsageBatch): string {
  return JSON.stringify(stamped(batch));
}

export function decodeUsageBatch(data: string | Uint8Array, origin: WireOrigin): WireRead<UsageBatch> {
  return checkWire(UsageBatchWire, data, origin);
}
