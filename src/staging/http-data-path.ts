import type { JobMessage, StagedRef } from "../queue/job-queue.js";
import { jitteredBackoffMs } from "../util/backoff.js";
import { delay } from "../util/time.js";
import type { JobDataPath } from "./data-path.js";
import {
  HEADERS,
  outcomeBody,
  outcomeHeader,
  resultPath,
  signRequest,
  stagedPath,
} from "./data-path-protocol.js";
import { InternalHttpClient, type InternalResponse, ResponseTooLargeError } from "./internal-http.js";
import type { JobOutcome } from "./job-outcome.js";

export interface HttpDataPathOptions {
  clusterSecret: string;
  /** One attempt's bound; the job's deadline bounds them all. */
  attemptTimeoutMs: number;
  /** The largest staged input or result a node may send back; a larger answer fails the call. */
  maxResponseBytes: number;
  /** Resolves a node id to its base URL when the ref carries none (from discovery). */
  resolveNode?: (nodeId: string) => string | undefined;
  now?: () => number;
}

class Gone extends Error {}

/**
 * The fleet data path, worker side: fetches a job's staged bytes from the
 * API node that holds them and posts the result back to it, over internal
 * HTTP signed with the cluster secret. Each call retries network errors and
 * 5xx with jittered backoff until the job's deadline; a 404 or 410 (the API
 * node no longer holds the bytes or nobody waits) ends it at once.
 */
export class HttpDataPath implements JobDataPath {
  readonly #http: InternalHttpClient;

  constructor(private readonly options: HttpDataPathOptions) {
    this.#http = new InternalHttpClient(options.maxResponseBytes);
  }

  /** Closes the sockets kept open to API nodes. */
  close(): void {
    this.#http.close();
  }

  async fetchInput(
    ref: StagedRef,
    deadline = Date.now() + this.options.attemptTimeoutMs,
  ): Promise<Buffer | undefined> {
    const path = stagedPath(ref.key);
    try {
      const res = await this.#call(this.#base(ref), "GET", path, undefined, deadline, {});
      return res.body;
    } catch (error) {
      if (error instanceof Gone) return undefined;
      throw error;
    }
  }

  async postResult(job: JobMessage, outcome: JobOutcome): Promise<boolean> {
    const path = resultPath(job.id);
    const body = outcomeBody(outcome);
    const signed = { [HEADERS.outcome]: outcomeHeader(outcome) };
    try {
      await this.#call(this.#base(job.input), "POST", path, body, job.deadline, signed);
      return true;
    } catch (error) {
      if (error instanceof Gone) return false;
      throw error;
    }
  }

  #base(ref: StagedRef): string {
    const url = ref.url ?? this.options.resolveNode?.(ref.node);
    if (!url) throw new Error(`no address known for node ${ref.node}, which staged this job's input`);
    return url;
  }

  async #call(
    base: string,
    method: "GET" | "POST",
    path: string,
    body: Buffer | undefined,
    deadline: number,
    /** Our meaningful headers: signed with the method, path and body. */
    signedHeaders: Record<string, string>,
  ): Promise<InternalResponse> {
    const now = this.options.now ?? Date.now;
    let lastError: unknown;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - now();
      if (remaining <= 0) break;
      try {
        const res = await this.#http.request(new URL(`${base}${path}`), {
          method,
          body,
          headers: {
            ...(body ? { "content-type": "application/octet-stream" } : {}),
            ...signRequest(this.options.clusterSecret, { method, path, headers: signedHeaders, body }),
          },
          timeoutMs: Math.min(remaining, this.options.attemptTimeoutMs),
        });
        if (res.status === 404 || res.status === 410) throw new Gone();
        if (res.status >= 200 && res.status < 300) return res;
        lastError = new Error(`${method} ${base}${path} answered ${res.status}${authReason(res)}`);
        if (res.status < 500) break;
      } catch (error) {
        if (error instanceof Gone) throw error;
        lastError = error;
        if (error instanceof ResponseTooLargeError) break;
      }
      const pause = jitteredBackoffMs(attempt, 50, 2000);
      if (now() + pause >= deadline) break;
      await delay(pause);
    }
    throw new Error(
      `could not ${method === "GET" ? "fetch the staged input from" : "post the result to"} ${base} before the job's deadline`,
      { cause: lastError },
    );
  }
}

function authReason(res: InternalResponse): string {
  const reason = res.headers[HEADERS.authFailure];
  if (!reason) return "";
  if (reason === "version" || reason === "unsigned") {
    return ` (cluster authentication: ${reason}; the nodes sign their data path differently: run the same imgfleet version on every node)`;
  }
  return ` (cluster authentication: ${reason}; check that every node has the same fleet.clusterSecret and a synchronised clock)`;
}
