import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

export interface InternalResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface InternalRequest {
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
}

/** Sockets kept open per API node: one per lane in flight is plenty; more would only queue in the kernel. */
const MAX_SOCKETS_PER_HOST = 16;
const MAX_FREE_SOCKETS = 4;
/** Idle sockets closed after this, before a load balancer or the peer's keep-alive timeout would. */
const IDLE_SOCKET_MS = 4_000;

export class ResponseTooLargeError extends Error {
  override readonly name = "ResponseTooLargeError";
}

/**
 * Node-to-node HTTP over kept-alive sockets. node:http rather than fetch:
 * a worker makes two of these calls per job, and fetch's web streams and
 * abort signals cost more CPU than the transfer they wrap.
 */
export class InternalHttpClient {
  readonly #agents = {
    http: new HttpAgent(agentOptions()),
    https: new HttpsAgent(agentOptions()),
  };

  constructor(private readonly maxResponseBytes: number) {}

  request(url: URL, req: InternalRequest): Promise<InternalResponse> {
    const https = url.protocol === "https:";
    const send = https ? httpsRequest : httpRequest;
    const headers = req.body ? { ...req.headers, "content-length": String(req.body.length) } : req.headers;
    return new Promise((resolve, reject) => {
      const call = send(url, {
        method: req.method,
        headers,
        agent: https ? this.#agents.https : this.#agents.http,
      });
      // The whole exchange is bounded, not just a silent socket: a slow trickle must not outlive the deadline.
      const timer = setTimeout(
        () =>
          call.destroy(
            new Error(`${req.method} ${url.origin}${url.pathname}: no answer within ${req.timeoutMs} ms`),
          ),
        req.timeoutMs,
      );
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      call.on("error", fail);
      call.on("response", (res) => {
        const chunks: Buffer[] = [];
        let length = 0;
        res.on("data", (chunk: Buffer) => {
          length += chunk.length;
          if (length <= this.maxResponseBytes) return void chunks.push(chunk);
          call.destroy(
            new ResponseTooLargeError(`${url.origin} sent more than ${this.maxResponseBytes} bytes`),
          );
        });
        res.on("error", fail);
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, length) });
        });
      });
      call.end(req.body);
    });
  }

  /** Closes kept-alive sockets (they never hold the process open: the agent unrefs idle ones). */
  close(): void {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}

function agentOptions() {
  return {
    keepAlive: true,
    maxSockets: MAX_SOCKETS_PER_HOST,
    maxFreeSockets: MAX_FREE_SOCKETS,
    timeout: IDLE_SOCKET_MS,
    scheduling: "lifo" as const,
  };
}
