import type { Readable } from "node:stream";
import type { MultipartFile } from "@fastify/multipart";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ProblemError } from "../errors/problem.js";
import type { Metrics } from "../metrics/metrics.js";
import { type GrowStaging, UploadGuard, type UploadPace } from "./upload-guard.js";

/** The multipart field that carries the image. */
export const MULTIPART_FIELD = "image";

/**
 * The uploaded bytes: the raw body (any image/* or octet-stream) or the
 * `image` field of a multipart/form-data body, bounded by maxInputBytes.
 */
export async function readUpload(request: FastifyRequest, maxInputBytes: number): Promise<Buffer> {
  if (!request.isMultipart()) {
    if (request.body === undefined || request.body === null) {
      throw new ProblemError(
        "empty-body",
        "the request has no body; send the image bytes with an image/* Content-Type",
      );
    }
    if (!Buffer.isBuffer(request.body)) {
      // Parsed by another content-type parser (JSON, text): not an upload.
      throw new ProblemError(
        "unsupported-media-type",
        `a ${request.headers["content-type"]} body is not an image upload; send image/* or application/octet-stream, or multipart/form-data with a field named '${MULTIPART_FIELD}'`,
      );
    }
    if (request.body.length > maxInputBytes) throw tooLarge(request.body.length, maxInputBytes);
    return request.body;
  }
  const guard = guards.get(request);
  const file = await malformedFormIs400(() => {
    const parsing = request.file({ limits: { fileSize: maxInputBytes, files: 1, fields: 10, parts: 20 } });
    // A client may trickle the form before its image part even starts.
    return guard ? Promise.race([parsing, guard.refused()]) : parsing;
  });
  if (!file)
    throw new ProblemError(
      "empty-body",
      `the multipart body has no file; send the image in a field named '${MULTIPART_FIELD}'`,
    );
  if (file.fieldname !== MULTIPART_FIELD) {
    file.file.resume();
    throw new ProblemError(
      "bad-request",
      `the multipart file field is '${file.fieldname}'; name it '${MULTIPART_FIELD}'`,
    );
  }
  return malformedFormIs400(() => readFilePart(file, guard, maxInputBytes));
}

/**
 * busboy rejects a form it cannot parse (no closing boundary, a broken part
 * header) with a plain Error: the client's bytes, so a 400, not a 500. Errors
 * with a status (@fastify/multipart's limits) and our problems pass through.
 */
async function malformedFormIs400<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof ProblemError || typeof (error as { statusCode?: unknown }).statusCode === "number")
      throw error;
    throw new ProblemError(
      "bad-request",
      `the multipart body is malformed (${error instanceof Error ? error.message : String(error)}); send a complete multipart/form-data body with the image in a field named '${MULTIPART_FIELD}'`,
      { cause: error },
    );
  }
}

function tooLarge(bytes: number, max: number): ProblemError {
  return new ProblemError("too-large", `the upload is ${bytes} bytes; at most ${max} are accepted`, {
    extras: { maxBytes: max },
  });
}

/** Each admitted upload's guard, for the body's reader (the raw parser, or the multipart path above). */
const guards = new WeakMap<FastifyRequest, UploadGuard>();

export interface GuardOptions {
  pace: UploadPace;
  /** Grows the upload's staging reservation by bytes that arrived. */
  grow: GrowStaging;
  refusals: Metrics["uploadRefusals"];
}

/**
 * Guards an admitted upload from here on: its bytes grow its staging
 * reservation as they arrive, and a client too slow or too late is cut off.
 * A refused upload's connection is closed, since the rest of its body is
 * never read.
 */
export function guardUpload(request: FastifyRequest, reply: FastifyReply, options: GuardOptions): void {
  const guard = new UploadGuard({
    pace: options.pace,
    grow: options.grow,
    onRefused: (limit) => {
      if (!reply.sent) reply.header("connection", "close");
      options.refusals.inc({ limit });
    },
  });
  guards.set(request, guard);
  reply.raw.once("close", () => guard.stop());
}

/**
 * The parser of raw image bodies: reads the body chunk by chunk into the
 * request's guard (Fastify's own `parseAs: "buffer"` would only see it whole),
 * bounded by `maxInputBytes`.
 */
export function addRawUploadParser(app: FastifyInstance, types: RegExp, maxInputBytes: number): void {
  app.addContentTypeParser(types, (request, payload, done) => {
    readRawBody(payload, guards.get(request), maxInputBytes).then(
      (body) => done(null, body),
      (error: Error) => done(error, undefined),
    );
  });
}

function readRawBody(payload: Readable, guard: UploadGuard | undefined, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (error: Error | null) => {
      payload.off("data", onData).off("end", onEnd).off("error", onError);
      guard?.stop();
      if (!error) return resolve(Buffer.concat(chunks, length));
      // Read no further: the answer closes the connection.
      payload.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) return finish(tooLargeBody(maxBytes));
      try {
        guard?.add(chunk.length);
      } catch (error) {
        return finish(error as Error);
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(null);
    // The connection failed under the body (the client left): a client error, as Fastify's own parser says.
    const onError = (error: Error & { statusCode?: number }) =>
      finish(Object.assign(error, { statusCode: 400 }));
    payload.on("data", onData).on("end", onEnd).on("error", onError);
    guard?.onRefusal(finish);
  });
}

/** The image part of a multipart body, counted into the upload's guard as it arrives. */
async function readFilePart(
  file: MultipartFile,
  guard: UploadGuard | undefined,
  maxBytes: number,
): Promise<Buffer> {
  if (!guard) return file.toBuffer();
  const stream = file.file;
  guard.onRefusal((problem) => stream.destroy(problem));
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      guard.add(chunk.length);
      chunks.push(chunk);
    }
  } finally {
    guard.stop();
  }
  if (stream.truncated) throw tooLargeBody(maxBytes);
  return Buffer.concat(chunks);
}

function tooLargeBody(max: number): ProblemError {
  return new ProblemError("too-large", `the upload exceeds the ${max} byte limit`, {
    extras: { maxBytes: max },
  });
}
