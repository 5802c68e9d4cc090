import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { InvalidMeterRecordError, type UsageMeter } from "../usage/meter.js";
import { ANONYMOUS_TENANT, type BilledWork, type MeterRecord, type Payer, unworked } from "../usage/model.js";

/**
 * What the meter learns of one request, set by its handler as typed values:
 * who pays (from authentication), the bytes received, and the work done
 * (from the resize's result). Kept apart from the request-log facts on
 * purpose: a log field can be renamed freely, a billed one cannot.
 */
interface Billing {
  payer?: Payer;
  inBytes?: number;
  work?: BilledWork;
}

const billings = new WeakMap<FastifyRequest, Billing>();

function billingOf(request: FastifyRequest): Billing {
  let billing = billings.get(request);
  if (!billing) {
    billing = {};
    billings.set(request, billing);
  }
  return billing;
}

/** The caller who pays for this request (also when it is refused after authentication). */
export function billTo(request: FastifyRequest, payer: Payer): void {
  billingOf(request).payer = payer;
}

/** The upload's size, billed even when no work follows (a bad option, a corrupt image). */
export function billInput(request: FastifyRequest, bytes: number): void {
  billingOf(request).inBytes = bytes;
}

/** The work a request did, as its resize measured it. */
export function billWork(request: FastifyRequest, work: BilledWork): void {
  billingOf(request).work = work;
}

/**
 * Meters every answer of the routes in this scope, success or failure, for
 * callers whose tenant is known. The record is journaled in `onSend`, before
 * the response leaves, so a client that saw an answer was billed for it.
 */
export function installMetering(app: FastifyInstance, meter: UsageMeter | null, anonymous: boolean): void {
  if (!meter) return;
  app.addHook("onSend", async (request, reply, payload) => {
    const record = meterRecordOf(request, reply, anonymous);
    if (!record) return payload;
    try {
      meter.record(record);
    } catch (error) {
      if (!(error instanceof InvalidMeterRecordError)) throw error;
      // A bug in what the handler billed: the answer still goes out, the failure is loud.
      request.log.error({ err: error }, "a request reached the meter without what it is billed for");
    }
    return payload;
  });
}

function meterRecordOf(request: FastifyRequest, reply: FastifyReply, anonymous: boolean): MeterRecord | null {
  const billing = billings.get(request) ?? {};
  const payer = billing.payer ?? (anonymous ? { tenant: ANONYMOUS_TENANT, key: null } : null);
  if (!payer) return null;
  return {
    id: request.id,
    ...payer,
    at: Date.now(),
    status: reply.statusCode,
    ...(billing.work ?? unworked("resize", billing.inBytes ?? 0)),
  };
}
