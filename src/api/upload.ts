import type { FastifyRequest } from "fastify";
import { ProblemError } from "../errors/problem.js";

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
  const file = await malformedFormIs400(() =>
    request.file({ limits: { fileSize: maxInputBytes, files: 1, fields: 10, parts: 20 } }),
  );
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
  return malformedFormIs400(() => file.toBuffer());
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
