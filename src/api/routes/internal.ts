import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type ClusterAuthFailure, ClusterVerifier, MAX_SKEW_MS } from "../../fleet/cluster-auth.js";
import { OUTCOME_HEADER, parseOutcome } from "../../staging/outcome-wire.js";
import type { PendingResults } from "../../staging/pending-results.js";
import type { StagingTable } from "../../staging/staging-table.js";

export const INTERNAL_PREFIX = "/internal/v1";
/** A result is one output image: 8192² RGBA PNG at worst is ~270 MB; anything larger is not ours. */
const MAX_RESULT_BYTES = 320 * 1024 * 1024;

export interface InternalDeps {
  staging: StagingTable;
  pending: PendingResults;
  clusterSecret: string;
}

/**
 * The API node's side of the fleet data path: workers fetch staged uploads
 * and post results back here, point to point, authenticated by the cluster
 * secret (HMAC, timestamp, nonce). Registered only in fleet mode.
 */
export function internalRoutes(app: FastifyInstance, deps: InternalDeps): void {
  const verifier = new ClusterVerifier(deps.clusterSecret);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_RESULT_BYTES }, (_r, body, done) =>
    done(null, body),
  );
  // Cheap checks before a body is read, so a stranger cannot make us buffer uploads; the signature needs the body.
  app.addHook("onRequest", async (request, reply) => {
    const at = Number(header(request, "x-imgfleet-timestamp"));
    if (!header(request, "x-imgfleet-signature")) return refuse(reply, "missing");
    if (!Number.isFinite(at) || Math.abs(Date.now() - at) > MAX_SKEW_MS) return refuse(reply, "stale");
  });
  app.addHook("preHandler", async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    const failure = verifier.verify(request.method, request.url, request.headers, body);
    if (failure) return refuse(reply, failure);
  });

  app.get<{ Params: { key: string } }>(`${INTERNAL_PREFIX}/staged/:key`, async (request, reply) => {
    const bytes = deps.staging.get(request.params.key);
    if (!bytes) return reply.code(404).send();
    return reply.type("application/octet-stream").send(bytes);
  });

  app.post<{ Params: { jobId: string } }>(`${INTERNAL_PREFIX}/results/:jobId`, async (request, reply) => {
    const outcome = parseOutcome(
      header(request, OUTCOME_HEADER),
      (request.body as Buffer) ?? Buffer.alloc(0),
    );
    if (!outcome) return reply.code(400).send();
    // 410: nobody waits any more (deadline passed, client gone); the worker stops retrying.
    return reply.code(deps.pending.settle(request.params.jobId, outcome) ? 204 : 410).send();
  });
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Bare status codes: these endpoints talk to workers, which log the reason; no problem document to leak. */
function refuse(reply: FastifyReply, failure: ClusterAuthFailure): FastifyReply {
  reply.header("x-imgfleet-auth", failure);
  return reply.code(failure === "busy" ? 503 : 401).send();
}
