import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { PUBLIC_PREFIX } from "../../contract/paths.js";
import { ProblemError } from "../../errors/problem.js";
import type { Authenticator, Principal } from "../../identity/authenticator.js";
import { effectiveMaxInputBytes } from "../../image/tenant-policy.js";
import type { Metrics } from "../../metrics/metrics.js";
import { type ResizeResponse, type ResizeService, WorkerProblemError } from "../../resize/resize-service.js";
import type { UsageMeter } from "../../usage/meter.js";
import { nowMs, roundMs } from "../../util/time.js";
import { billInput, billTo, billWork, installMetering } from "../metering.js";
import { lifeOf } from "../request-life.js";
import { addRawUploadParser, guardUpload, readUpload } from "../upload.js";
import type { UploadPace } from "../upload-guard.js";

/** Content types taken as a raw image body; the real format is sniffed from the bytes. */
const RAW_BODY_TYPES = /^(image\/[\w.+-]+|application\/octet-stream)$/i;

export interface ResizeRouteDeps {
  service: ResizeService;
  metrics: Metrics;
  authenticator: Authenticator;
  maxInputBytes: number;
  /** Null when usage metering is off. */
  meter: UsageMeter | null;
  /** `auth.mode: none`: requests are metered to the anonymous tenant. */
  anonymous: boolean;
  /** How fast an upload's body must arrive (`uploads.*`). */
  uploads: UploadPace;
}

interface InFlight {
  principal: Principal;
  authMs: number;
  stagingKey: string;
}

export function resizeRoutes(app: FastifyInstance, deps: ResizeRouteDeps) {
  const { maxInputBytes, meter } = deps;
  installMetering(app, meter, deps.anonymous);
  addRawUploadParser(app, RAW_BODY_TYPES, maxInputBytes);
  // Each admitted request's caller and staging key; what they hold is given back by the request's life.
  const admitted = new WeakMap<FastifyRequest, InFlight>();
  app.post(
    `${PUBLIC_PREFIX}/resize`,
    { bodyLimit: maxInputBytes, onRequest: admitter(deps, admitted) },
    async (request, reply) => {
      const life = lifeOf(request);
      return life.work(() =>
        serveResize(request, reply, admitted.get(request) as InFlight, deps, life.signal),
      );
    },
  );
}

/** Reads the upload, resizes it through the queue and answers with the image. */
async function serveResize(
  request: FastifyRequest,
  reply: FastifyReply,
  entry: InFlight,
  deps: ResizeRouteDeps,
  clientGone: AbortSignal,
) {
  const { service, metrics, maxInputBytes } = deps;
  const input = await readUpload(request, effectiveMaxInputBytes(entry.principal.policy, maxInputBytes));
  metrics.inputBytes.inc(input.length);
  reply.imgfleet.inBytes = input.length;
  billInput(request, input.length);
  // A slow upload outlives what authentication saw: a key revoked or a tenant suspended meanwhile is refused now.
  entry.principal.recheck();
  const result = await service
    .resize({
      input,
      stagingKey: entry.stagingKey,
      query: request.query as Record<string, string | string[] | undefined>,
      accept: request.headers.accept,
      ifNoneMatch: request.headers["if-none-match"],
      signal: clientGone,
      tenant: entry.principal.tenant,
      policy: entry.principal.policy,
    })
    .catch((error: unknown) => {
      if (error instanceof WorkerProblemError) billWork(request, error.work);
      throw error;
    })
    // Once the worker has answered (or the client has gone) the staged bytes are no longer needed.
    .finally(() => service.release(entry.stagingKey));
  billWork(request, result.work);
  return sendResult(reply, result, metrics, entry.authMs);
}

/**
 * Authentication and admission, before the body is read: a refused upload
 * costs nothing. The caller's in-flight slot and the staging reservation are
 * held by the request's life, which gives them back once however it ends.
 */
function admitter(deps: ResizeRouteDeps, admitted: WeakMap<FastifyRequest, InFlight>) {
  const { authenticator, service, meter } = deps;
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const life = lifeOf(request);
    const authStarted = nowMs();
    const principal = authenticate(authenticator, request, reply);
    life.hold(() => principal.release());
    const authMs = nowMs() - authStarted;
    reply.headers(principal.headers);
    if (principal.tenant) {
      Object.assign(reply.imgfleet, { tenant: principal.tenant, key: principal.keyId });
      billTo(request, { tenant: principal.tenant, key: principal.keyId });
    }
    const stagingKey = randomUUID();
    try {
      meter?.admit();
      service.admit(stagingKey, declaredLength(request), principal.policy, principal.tenant);
    } catch (error) {
      reply.header("connection", "close");
      throw error;
    }
    life.hold(() => service.release(stagingKey));
    admitted.set(request, { principal, authMs, stagingKey });
    // From here the body's bytes grow the reservation as they arrive, and a slow client is cut off.
    guardUpload(request, reply, {
      pace: deps.uploads,
      grow: (bytes) => service.growUpload(stagingKey, bytes),
      refusals: deps.metrics.uploadRefusals,
    });
  };
}

/** Authenticates; a refusal of a known caller (suspended, over its limits) still names it for the log and the meter. */
function authenticate(authenticator: Authenticator, request: FastifyRequest, reply: FastifyReply): Principal {
  try {
    return authenticator.authenticate(request.headers.authorization, "resize", request.ip);
  } catch (error) {
    if (error instanceof ProblemError && error.subject) {
      Object.assign(reply.imgfleet, { tenant: error.subject.tenant, key: error.subject.keyId });
      billTo(request, { tenant: error.subject.tenant, key: error.subject.keyId });
    }
    throw error;
  }
}

function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers["content-length"];
  const n = header === undefined ? Number.NaN : Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function serverTiming(steps: Record<string, number>): string {
  return Object.entries(steps)
    .map(([name, ms]) => `${name};dur=${roundMs(ms)}`)
    .join(", ");
}

function sendResult(reply: FastifyReply, result: ResizeResponse, metrics: Metrics, authMs: number) {
  const t = result.timings;
  const steps = {
    auth: authMs,
    probe: t.probe,
    queue: t.queue,
    fetch: t.fetch,
    process: t.process,
    total: reply.elapsedTime,
  };
  Object.assign(reply.imgfleet, {
    inFormat: result.probe.format,
    inSize: `${result.probe.width}x${result.probe.height}`,
    timings: { ...steps, cpu: t.cpu },
  });
  reply.header("server-timing", serverTiming(steps));
  reply.header("etag", result.etag);
  if (result.varyAccept) reply.header("vary", "Accept");
  if (result.kind === "not-modified") return reply.code(304).send();
  const { info, probe } = result;
  Object.assign(reply.imgfleet, {
    outFormat: info.format,
    outBytes: result.data.length,
    outSize: `${info.width}x${info.height}`,
    // Frames decoded are the frames written: one unless animated output was asked for.
    inPixels: probe.width * probe.height * info.pages,
    outPixels: info.width * info.height * info.pages,
  });
  metrics.outputBytes.inc(result.data.length);
  metrics.inputSize.observe(reply.imgfleet.inBytes ?? 0);
  reply.header("x-image-width", String(result.info.width));
  reply.header("x-image-height", String(result.info.height));
  reply.header("cache-control", "private, max-age=0, must-revalidate");
  return reply.code(200).type(result.contentType).send(result.data);
}
