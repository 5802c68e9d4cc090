import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  type ClusterAuthFailure,
  ClusterVerifier,
  DATA_PATH_ROUTES,
  decodeOutcome,
  HEADERS,
  hasUnsignedHeader,
  MAX_RESULT_BYTES,
  MAX_SKEW_MS,
} from "../../staging/data-path-protocol.js";
import type { PendingResults } from "../../staging/pending-results.js";
import type { StagingTable } from "../../staging/staging-table.js";
import { LOG_ONLY_WIRE, type WireRejections } from "../../wire/wire.js";

export interface InternalDeps {
  staging: StagingTable;
  pending: PendingResults;
  clusterSecret: string;
  /** Where an outcome whose header fails its schema is reported (default: logged only). */
  wire?: WireRejections;
}

/**
 * The API node's side of the fleet data path (the protocol is in
 * src/staging/data-path-protocol.ts): workers fetch staged uploads and post
 * results back here, point to point, authenticated by the cluster secret
 * (an HMAC of the method, path, our headers and the body; timestamp, nonce). Registered only in fleet mode.
 */
export function internalRoutes(app: FastifyInstance, deps: InternalDeps): void {
  const verifier = new ClusterVerifier(deps.clusterSecret);
  const wire = deps.wire ?? LOG_ONLY_WIRE;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_RESULT_BYTES }, (_r, body, done) =>
    done(null, body),
  );
  // Cheap checks before a body is read, so a stranger cannot make us buffer uploads; the signature needs the body.
  app.addHook("onRequest", async (request, reply) => {
    const at = Number(header(request, HEADERS.timestamp));
    if (!header(request, HEADERS.signature)) return refuse(reply, "missing");
    if (hasUnsignedHeader(request.headers)) return refuse(reply, "unsigned");
    if (!Number.isFinite(at) || Math.abs(Date.now() - at) > MAX_SKEW_MS) return refuse(reply, "stale");
  });
  app.addHook("preHandler", async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    const failure = verifier.verify(request.method, request.url, request.headers, body);
    if (failure) return refuse(reply, failure);
  });

  app.get<{ Params: { key: string } }>(DATA_PATH_ROUTES.staged, async (request, reply) => {
    const bytes = deps.staging.get(request.params.key);
    if (!bytes) return reply.code(404).send();
    return reply.type("application/octet-stream").send(bytes);
  });

  app.post<{ Params: { jobId: string } }>(DATA_PATH_ROUTES.results, async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const peer = `${request.ip} (job ${request.params.jobId})`;
    const read = decodeOutcome(header(request, HEADERS.outcome), body, peer);
    if (!read.ok) {
      wire.reject(read.rejection);
      return reply.code(400).send();
    }
    // 410: nobody waits any more (deadline passed, client gone); the worker stops retrying.
    return reply.code(deps.pending.settle(request.params.jobId, read.value) ? 204 : 410).send();
  });
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Bare status codes: these endpoints talk to workers, which log the reason; no problem document to leak. */
function refuse(reply: FastifyReply, failure: ClusterAuthFailure): FastifyReply {
  reply.header(HEADERS.authFailure, failure);
  return reply.code(failure === "busy" ? 503 : 401).send();
}
