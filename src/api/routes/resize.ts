import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Metrics } from "../../metrics/metrics.js";
import type { ResizeResponse, ResizeService } from "../../resize/resize-service.js";
import { roundMs } from "../../util/time.js";
import { readUpload } from "../upload.js";

/** Content types taken as a raw image body; the real format is sniffed from the bytes. */
const RAW_BODY_TYPES = /^(image\/[\w.+-]+|application\/octet-stream)$/i;

export function resizeRoutes(
  app: FastifyInstance,
  deps: { service: ResizeService; metrics: Metrics; maxInputBytes: number },
) {
  const { service, metrics, maxInputBytes } = deps;
  app.addContentTypeParser(
    RAW_BODY_TYPES,
    { parseAs: "buffer", bodyLimit: maxInputBytes },
    (_req, body, done) => done(null, body),
  );
  // The staging reservation of each request in flight; released however the request ends.
  const stagingKeys = new WeakMap<FastifyRequest, string>();
  const release = async (request: FastifyRequest) => {
    const key = stagingKeys.get(request);
    if (key) service.release(key);
  };

  app.post(
    "/v1/resize",
    {
      bodyLimit: maxInputBytes,
      // Admission runs before the body is read: an overloaded node refuses uploads it cannot hold.
      onRequest: async (request, reply) => {
        const key = randomUUID();
        try {
          service.admit(key, declaredLength(request));
        } catch (error) {
          reply.header("connection", "close");
          throw error;
        }
        stagingKeys.set(request, key);
      },
      onResponse: release,
      onRequestAbort: release,
    },
    async (request, reply) => {
      const input = await readUpload(request, maxInputBytes);
      metrics.inputBytes.inc(input.length);
      reply.imgfleet.inBytes = input.length;
      const closed = new AbortController();
      // The response closing before it finished means the client went away.
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) closed.abort();
      });
      const result = await service.resize({
        input,
        stagingKey: stagingKeys.get(request) ?? "",
        query: request.query as Record<string, string | string[] | undefined>,
        accept: request.headers.accept,
        ifNoneMatch: request.headers["if-none-match"],
        signal: closed.signal,
        tenant: null,
      });
      return sendResult(reply, result, metrics);
    },
  );
}

function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers["content-length"];
  const n = header === undefined ? Number.NaN : Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function sendResult(reply: FastifyReply, result: ResizeResponse, metrics: Metrics) {
  const totalMs = reply.elapsedTime;
  const t = result.timings;
  Object.assign(reply.imgfleet, {
    inFormat: result.probe.format,
    inSize: `${result.probe.width}x${result.probe.height}`,
    timings: { ...t, total: totalMs },
  });
  reply.header(
    "server-timing",
    `probe;dur=${roundMs(t.probe)}, queue;dur=${roundMs(t.queue)}, fetch;dur=${roundMs(t.fetch)}, process;dur=${roundMs(t.process)}, total;dur=${roundMs(totalMs)}`,
  );
  reply.header("etag", result.etag);
  if (result.varyAccept) reply.header("vary", "Accept");
  if (result.kind === "not-modified") return reply.code(304).send();
  Object.assign(reply.imgfleet, {
    outFormat: result.info.format,
    outBytes: result.data.length,
    outSize: `${result.info.width}x${result.info.height}`,
  });
  metrics.outputBytes.inc(result.data.length);
  metrics.inputSize.observe(reply.imgfleet.inBytes ?? 0);
  reply.header("x-image-width", String(result.info.width));
  reply.header("x-image-height", String(result.info.height));
  reply.header("cache-control", "private, max-age=0, must-revalidate");
  return reply.code(200).type(result.contentType).send(result.data);
}
