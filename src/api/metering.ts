import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { UsageMeter } from "../usage/meter.js";
import { ANONYMOUS_TENANT, type MeterRecord } from "../usage/model.js";

/**
 * Meters every answer of the routes in this scope, success or failure, for
 * callers whose tenant is known. The record is journaled in `onSend`, before
 * the response leaves, so a client that saw an answer was billed for it.
 */
export function installMetering(app: FastifyInstance, meter: UsageMeter | null, anonymous: boolean): void {
  if (!meter) return;
  app.addHook("onSend", async (request, reply, payload) => {
    const record = meterRecordOf(request, reply, anonymous);
    if (record) meter.record(record);
    return payload;
  });
}

function meterRecordOf(request: FastifyRequest, reply: FastifyReply, anonymous: boolean): MeterRecord | null {
  const facts = reply.imgfleet;
  const tenant = facts.tenant ?? (anonymous ? ANONYMOUS_TENANT : null);
  if (!tenant) return null;
  const timings = facts.timings ?? {};
  return {
    id: request.id,
    tenant,
    key: facts.key ?? null,
    at: Date.now(),
    op: "resize",
    status: reply.statusCode,
    inBytes: facts.inBytes ?? 0,
    outBytes: facts.outBytes ?? 0,
    inPixels: facts.inPixels ?? 0,
    outPixels: facts.outPixels ?? 0,
    inFormat: facts.inFormat ?? null,
    outFormat: facts.outFormat ?? null,
    queueMs: timings.queue ?? 0,
    processMs: timings.process ?? 0,
    cpuMs: timings.cpu ?? 0,
  };
}
