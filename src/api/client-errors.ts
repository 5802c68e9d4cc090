import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { Config } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import type { Metrics } from "../metrics/metrics.js";

/** Margin of Node's whole-request timeout over our own body deadline, so the upload guard answers first. */
const BACKSTOP_MARGIN_MS = 5000;

/**
 * Node's HTTP server options for slow clients: the headers must arrive
 * within `server.headersTimeoutMs`; the whole request within the body's
 * deadline (`uploads.timeoutMs`, enforced by the upload guard with a problem
 * document) plus a margin, as a backstop. Node checks these every
 * `connectionsCheckingInterval` (30 s by default, far coarser than the
 * bounds themselves).
 */
export function slowClientServerOptions(config: Readonly<Config>) {
  const headersTimeout = config.server.headersTimeoutMs;
  return {
    http: {
      headersTimeout,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    requestTimeout: headersTimeout + config.uploads.timeoutMs + BACKSTOP_MARGIN_MS,
  };
}

/**
 * Answers what Node reports on a connection before a request exists (or when
 * its own timeout cut one off): a timeout is a `408 request-timeout` problem
 * document, counted, and the connection closed; anything else is what Fastify
 * answers by default.
 */
export function clientErrorHandler(metrics: Metrics) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    // A reset connection has nobody to answer.
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      metrics.uploadRefusals.inc({ limit: "headers" });
      const problem = new ProblemError(
        "request-timeout",
        "the request did not arrive in time; the connection is closed — send the request at once",
      );
      writeRaw(socket, problem.status, "application/problem+json", JSON.stringify(problem.toJSON()));
    } else if (error.code === "HPE_HEADER_OVERFLOW") {
      writeRaw(
        socket,
        431,
        "application/json",
        fastifyBody(431, "Exceeded maximum allowed HTTP header size"),
      );
    } else {
      writeRaw(socket, 400, "application/json", fastifyBody(400, "Client Error"));
    }
    // Destroyed with the error, so the request's life (if one began) sees why it ended.
    socket.destroy(error);
  };
}

function fastifyBody(status: number, message: string): string {
  return JSON.stringify({ error: STATUS_CODES[status], message, statusCode: status });
}

/** A whole response written on the socket: there is no request object to answer through. */
function writeRaw(socket: Socket, status: number, type: string, body: string): void {
  // Nothing may be written into the middle of an answer already under way.
  const underway = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (!socket.writable || underway?.headersSent) return;
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
