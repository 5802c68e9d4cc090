import { createHash } from "node:crypto";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";

/**
 * A real image origin on 127.0.0.1 for the delivery tests: files with ETag
 * and Last-Modified (and 304 on If-None-Match / If-Modified-Since), plus slow,
 * failing, redirecting and oversized paths. It counts the requests for each
 * path and remembers their headers, so a test can say "the origin was never
 * asked" or "the Host header named the hostname".
 */

export interface FileOptions {
  contentType?: string;
  /** Quoted entity tag; null for none. Default: a hash of the body. */
  etag?: string | null;
  /** null for none. Default: 2026-01-01. */
  lastModified?: Date | null;
}

type Route =
  | { kind: "file"; body: Buffer; contentType: string; etag: string | null; lastModified: Date | null }
  | { kind: "slow"; delayMs: number; after: Route }
  | { kind: "stall-body"; head: Buffer; declaredBytes: number; cut: boolean }
  | { kind: "status"; status: number }
  | { kind: "redirect"; to: string; status: number }
  | { kind: "oversized"; head: Buffer; bytes: number; declareLength: boolean };

const DEFAULT_LAST_MODIFIED = new Date("2026-01-01T00:00:00Z");
const CHUNK = 64 * 1024;

export class Origin {
  private readonly routes = new Map<string, Route>();
  private readonly counts = new Map<string, number>();
  private readonly headers = new Map<string, IncomingHttpHeaders>();
  private readonly sent = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<Origin> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const origin = new Origin(server, (server.address() as AddressInfo).port);
    server.on("request", (request, response) => origin.handle(request, response));
    return origin;
  }

  /** `http://<host>:<port><path>`; host defaults to 127.0.0.1 (a test may map any name to it). */
  url(path: string, host = "127.0.0.1"): string {
    return `http://${host}:${this.port}${path}`;
  }

  file(path: string, body: Buffer, options: FileOptions = {}): this {
    const etag =
      options.etag === undefined
        ? `"${createHash("sha1").update(body).digest("hex").slice(0, 16)}"`
        : options.etag;
    const lastModified = options.lastModified === undefined ? DEFAULT_LAST_MODIFIED : options.lastModified;
    return this.route(path, {
      kind: "file",
      body,
      contentType: options.contentType ?? "image/jpeg",
      etag,
      lastModified,
    });
  }

  /** Answers `body` (or a 200 with it) only after `delayMs`. */
  slow(path: string, delayMs: number, body: Buffer): this {
    const file: Route = { kind: "file", body, contentType: "image/jpeg", etag: null, lastModified: null };
    return this.route(path, { kind: "slow", delayMs, after: file });
  }

  /** Sends headers and `head`, then nothing more, though Content-Length promised `declaredBytes`. */
  stallBody(path: string, head: Buffer, declaredBytes: number): this {
    return this.route(path, { kind: "stall-body", head, declaredBytes, cut: false });
  }

  /** Sends headers and `head`, then closes the connection short of the `declaredBytes` Content-Length promised. */
  cutBody(path: string, head: Buffer, declaredBytes: number): this {
    return this.route(path, { kind: "stall-body", head, declaredBytes, cut: true });
  }

  /** Answers `status` with a short text body (500 by default). */
  fail(path: string, status = 500): this {
    return this.route(path, { kind: "status", status });
  }

  redirect(path: string, to: string, status = 302): this {
    return this.route(path, { kind: "redirect", to, status });
  }

  /** `bytes` bytes starting with `head` (so the format sniffs as an image), with or without Content-Length. */
  oversized(path: string, head: Buffer, bytes: number, declareLength: boolean): this {
    return this.route(path, { kind: "oversized", head, bytes, declareLength });
  }

  /** Requests received for `path` so far. */
  requests(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  /** The headers of the last request for `path`. */
  lastHeaders(path: string): IncomingHttpHeaders | undefined {
    return this.headers.get(path);
  }

  /** Body bytes written for `path` (oversized mode), counted as they are accepted by the socket. */
  bytesSent(path: string): number {
    return this.sent.get(path) ?? 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private route(path: string, route: Route): this {
    this.routes.set(path, route);
    return this;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    this.counts.set(path, this.requests(path) + 1);
    this.headers.set(path, request.headers);
    const route = this.routes.get(path);
    if (!route) {
      response.writeHead(404, { "content-type": "text/plain" }).end("no such file\n");
      return;
    }
    this.answer(path, route, request, response);
  }

  private answer(path: string, route: Route, request: IncomingMessage, response: ServerResponse): void {
    switch (route.kind) {
      case "file":
        serveFile(route, request, response);
        return;
      case "slow": {
        const timer = setTimeout(() => this.answer(path, route.after, request, response), route.delayMs);
        response.once("close", () => clearTimeout(timer));
        return;
      }
      case "stall-body":
        response.writeHead(200, { "content-type": "image/jpeg", "content-length": route.declaredBytes });
        response.write(route.head, () => {
          if (route.cut) response.socket?.destroy();
        });
        return;
      case "status":
        response.writeHead(route.status, { "content-type": "text/plain" }).end(`status ${route.status}\n`);
        return;
      case "redirect":
        response.writeHead(route.status, { location: route.to }).end();
        return;
      case "oversized":
        this.stream(path, route, response);
        return;
    }
  }

  /** Writes as the client reads (backpressure), so bytesSent shows where the client stopped. */
  private stream(path: string, route: Extract<Route, { kind: "oversized" }>, response: ServerResponse): void {
    response.writeHead(200, {
      "content-type": "image/jpeg",
      ...(route.declareLength ? { "content-length": route.bytes } : {}),
    });
    let written = 0;
    const next = (): void => {
      while (written < route.bytes && !response.destroyed) {
        const size = Math.min(CHUNK, route.bytes - written);
        const chunk =
          written === 0
            ? Buffer.concat([route.head, Buffer.alloc(size)]).subarray(0, size)
            : Buffer.alloc(size);
        written += size;
        this.sent.set(path, written);
        if (!response.write(chunk)) {
          response.once("drain", next);
          return;
        }
      }
      if (written >= route.bytes) response.end();
    };
    next();
  }
}

function serveFile(
  route: Extract<Route, { kind: "file" }>,
  request: IncomingMessage,
  response: ServerResponse,
): void {
  const validators: Record<string, string> = {};
  if (route.etag) validators.etag = route.etag;
  if (route.lastModified) validators["last-modified"] = route.lastModified.toUTCString();
  if (notModified(route, request.headers)) {
    response.writeHead(304, validators).end();
    return;
  }
  response.writeHead(200, {
    ...validators,
    "content-type": route.contentType,
    "content-length": route.body.length,
  });
  response.end(route.body);
}

function notModified(route: Extract<Route, { kind: "file" }>, headers: IncomingHttpHeaders): boolean {
  const ifNoneMatch = headers["if-none-match"];
  if (ifNoneMatch !== undefined) {
    const tags = ifNoneMatch.split(",").map((t) => t.trim().replace(/^W\//, ""));
    return route.etag !== null && (tags.includes("*") || tags.includes(route.etag.replace(/^W\//, "")));
  }
  const since = headers["if-modified-since"];
  if (since === undefined || route.lastModified === null) return false;
  const sinceMs = Date.parse(since);
  return Number.isFinite(sinceMs) && Math.floor(route.lastModified.getTime() / 1000) * 1000 <= sinceMs;
}

/**
 * A TCP server on 127.0.0.1 that accepts connections and never says a word:
 * a TLS handshake to it never completes, which is how a test reaches the
 * connect time limit without a black-holed network.
 */
export async function startSilentServer(): Promise<{
  port: number;
  connections: () => number;
  close: () => Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createTcpServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
