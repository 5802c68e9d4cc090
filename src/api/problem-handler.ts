import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ADMIN_PREFIX, MAX_ADMIN_BODY_BYTES } from "../contract/paths.js";
import { DatabaseUnavailableError } from "../db/database.js";
import { ProblemError } from "../errors/problem.js";
import type { Metrics } from "../metrics/metrics.js";
import { StorageFullError } from "../util/storage.js";

/** Fastify's own errors, translated to our problem types so clients see one vocabulary. */
function fromFastify(error: FastifyError, maxInputBytes: number, url: string): ProblemError {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
    case "FST_REQ_FILE_TOO_LARGE":
      if (url.startsWith(`${ADMIN_PREFIX}/`)) {
        return new ProblemError(
          "too-large",
          `the request body exceeds the admin API's ${MAX_ADMIN_BODY_BYTES} byte limit; admin bodies are small JSON documents`,
          { extras: { maxBytes: MAX_ADMIN_BODY_BYTES } },
        );
      }
      return new ProblemError("too-large", `the upload exceeds the ${maxInputBytes} byte limit`, {
        extras: { maxBytes: maxInputBytes },
      });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_INVALID_MULTIPART_CONTENT_TYPE":
      if (url.startsWith(`${ADMIN_PREFIX}/`)) {
        return new ProblemError(
          "unsupported-media-type",
          "send the body as JSON with Content-Type: application/json",
        );
      }
      return new ProblemError(
        "unsupported-media-type",
        "send the image as the raw body with an image/* or application/octet-stream Content-Type, or as multipart/form-data with a field named 'image'",
      );
    case "FST_ERR_CTP_EMPTY_TYPE":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new ProblemError("bad-request", error.message);
    default:
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
        return new ProblemError("bad-request", error.message);
      }
      return new ProblemError(
        "internal",
        "an unexpected error occurred; it has been logged with this request's id",
        {
          cause: error,
        },
      );
  }
}

/** Admin writes need the database; resizes never do, so this reaches only the management plane. */
function databaseUnavailable(error: DatabaseUnavailableError): ProblemError {
  return new ProblemError(
    "database-unavailable",
    `the management database is unavailable (${error.message}); resizing is unaffected — retry this change in a few seconds`,
    { retryAfterS: 5, cause: error },
  );
}

/** A disk the request needed is full (this node's data directory, or the database server's): a 503, never a 500. */
function storageFull(error: StorageFullError): ProblemError {
  return new ProblemError(
    "storage-full",
    `${error.message}; nothing was changed — retry after Retry-After, once space is freed`,
    { retryAfterS: 10, cause: error, extras: { reason: "disk-full", store: "database", path: error.path } },
  );
}

export function sendProblem(reply: FastifyReply, problem: ProblemError): FastifyReply {
  if (problem.retryAfterS !== undefined) reply.header("retry-after", String(problem.retryAfterS));
  reply.headers(problem.headers);
  return reply
    .code(problem.status)
    .type("application/problem+json")
    .send(problem.toJSON(reply.request.url.split("?")[0]));
}

/** Headers that describe an image answer, never a problem. */
const IMAGE_HEADERS = ["etag", "x-image-width", "x-image-height"];

/** One error path for every route: problem+json with a stable type, never a stack trace. */
export function installProblemHandlers(app: FastifyInstance, metrics: Metrics, maxInputBytes: number): void {
  app.setErrorHandler((error: FastifyError | ProblemError, request: FastifyRequest, reply: FastifyReply) => {
    const problem =
      error instanceof ProblemError
        ? error
        : error instanceof DatabaseUnavailableError
          ? databaseUnavailable(error)
          : error instanceof StorageFullError
            ? storageFull(error)
            : fromFastify(error as FastifyError, maxInputBytes, request.url);
    if (problem.code === "internal") {
      request.log.error(
        { err: error },
        "unexpected error while serving a request; this is a bug, report it with the request id",
      );
    }
    metrics.rejections.inc({ reason: problem.code });
    reply.imgfleet.problem = problem.code;
    // A problem can replace an image already prepared (its usage could not be journaled): not its headers.
    for (const name of IMAGE_HEADERS) reply.removeHeader(name);
    return sendProblem(reply, problem);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "/";
    const allow = allowedMethods(app, path);
    if (allow.length > 0) {
      reply.header("allow", allow.join(", "));
      return sendProblem(
        reply,
        new ProblemError(
          "method-not-allowed",
          `${path} does not take ${request.method}; use ${allow.join(" or ")}`,
          {
            extras: { allow },
          },
        ),
      );
    }
    return sendProblem(reply, new ProblemError("not-found", `no route for ${request.method} ${path}`));
  });
}

/**
 * The methods some route answers on this path. Fastify calls the not-found
 * handler for a known path with the wrong method too; HTTP says that is a
 * 405 naming the methods that would work.
 */
function allowedMethods(app: FastifyInstance, path: string): string[] {
  return app.supportedMethods.filter((method) => app.findRoute({ method, url: path }) !== null).sort();
}
