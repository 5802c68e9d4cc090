import type { FastifyInstance, FastifyRequest } from "fastify";
import { InvalidMeterRecordError, type UsageMeter } from "../usage/meter.js";
import { ANONYMOUS_TENANT, type BilledWork, type MeterRecord, type Payer, unworked } from "../usage/model.js";
import { lifeOf } from "./request-life.js";

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
 * Meters every request of the routes in this scope once, success or failure,
 * for callers whose tenant is known. An answer's record is journaled in
 * `onSend`, before the response leaves, so a client that saw an answer was
 * billed for it. A request whose connection closed before any answer went
 * out is recorded when its life ends (request-life.ts), with the status of
 * that ending (499 for a client that left) and no output: it is a client
 * error, never a server error, and its work is measured but not delivered.
 */
export function installMetering(app: FastifyInstance, meter: UsageMeter | null, anonymous: boolean): void {
  if (!meter) return;
  app.addHook("onRequest", async (request) => {
    const life = lifeOf(request);
    life.onEnd((ended) => {
      if (!life.claimRecord(true)) return;
      journal(meter, request, meterRecordOf(request, ended.status, anonymous, ended.answered));
    });
  });
  app.addHook("onSend", async (request, reply, payload) => {
    if (lifeOf(request).claimRecord(false)) {
      journal(meter, request, meterRecordOf(request, reply.statusCode, anonymous, true));
    }
    return payload;
  });
}

function journal(meter: UsageMeter, request: FastifyRequest, record: MeterRecord | null): void {
  if (!record) return;
  try {
    meter.record(record);
  } catch (error) {
    if (!(error instanceof InvalidMeterRecordError)) throw error;
    // A bug in what the handler billed: the answer still goes out, the failure is loud.
    request.log.error({ err: error }, "a request reached the meter without what it is billed for");
  }
}

function meterRecordOf(
  request: FastifyRequest,
  status: number,
  anonymous: boolean,
  delivered: boolean,
): MeterRecord | null {
  const billing = billings.get(request) ?? {};
  const payer = billing.payer ?? (anonymous ? { tenant: ANONYMOUS_TENANT, key: null } : null);
  if (!payer) return null;
  const work = billing.work ?? unworked("resize", billing.inBytes ?? 0);
  return {
    id: request.id,
    ...payer,
    at: Date.now(),
    status,
    ...work,
    // An image made for a client that left was never sent: its work is recorded, its output is not.
    ...(delivered ? {} : { outBytes: 0, outPixels: 0, outFormat: null }),
  };
}
