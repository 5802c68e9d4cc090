import { randomUUID } from "node:crypto";
import type { Config } from "../config/schema.js";
import { ProblemError, type WireProblem } from "../errors/problem.js";
import { MIME_TYPES } from "../image/formats.js";
import type { AutoChoices } from "../image/negotiate.js";
import { parseResizeOptions } from "../image/options.js";
import { planResize } from "../image/plan.js";
import { type Probe, probeImage } from "../image/probe.js";
import type { OutputInfo } from "../image/spec.js";
import { effectiveMaxInputBytes, NODE_POLICY, type TenantPolicy } from "../image/tenant-policy.js";
import type { Metrics } from "../metrics/metrics.js";
import { enqueueWithin, QueueUnavailableError } from "../queue/enqueue.js";
import { type JobMessage, type JobQueue, QueueFullError, queueFullMessage } from "../queue/job-queue.js";
import type { JobOutcome } from "../staging/job-outcome.js";
import type { PendingResults } from "../staging/pending-results.js";
import type { StagingRefusal, StagingTable } from "../staging/staging-table.js";
import { type BilledWork, unworked } from "../usage/model.js";
import { nowMs } from "../util/time.js";
import type { DrainRate } from "./drain-rate.js";
import { etagFor, matchesIfNoneMatch } from "./etag.js";

export interface ResizeRequest {
  input: Buffer;
  /** The staging reservation made by `admit` for this upload. */
  stagingKey: string;
  query: Record<string, string | string[] | undefined>;
  accept: string | undefined;
  ifNoneMatch: string | undefined;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  /** Set by the identity layer; null in an open (`auth.mode: none`) node. */
  tenant: string | null;
  policy: TenantPolicy;
}

/** Milliseconds per step, for Server-Timing and the request log. */
export interface ResizeTimings {
  probe: number;
  queue: number;
  fetch: number;
  process: number;
  cpu: number;
}

export type ResizeResponse =
  | {
      kind: "image";
      data: Buffer;
      contentType: string;
      etag: string;
      varyAccept: boolean;
      info: OutputInfo;
      probe: Probe;
      timings: ResizeTimings;
      /** What the request is billed for: the meter's only source. */
      work: BilledWork;
    }
  | {
      kind: "not-modified";
      etag: string;
      varyAccept: boolean;
      probe: Probe;
      timings: ResizeTimings;
      work: BilledWork;
    };

/** A job the worker ran and failed (a corrupt image, a crash): the problem, and the work it still cost. */
export class WorkerProblemError extends ProblemError {
  constructor(
    problem: WireProblem,
    readonly work: BilledWork,
  ) {
    super(problem.code, problem.detail);
  }
}

export interface ResizeServiceDeps {
  config: Readonly<Config>;
  queue: JobQueue;
  staging: StagingTable;
  pending: PendingResults;
  drain: DrainRate;
  metrics: Metrics;
  /** This node's id in StagedRef (embedded: "local"). */
  nodeId: string;
  /** Where workers on other nodes fetch staged bytes (fleet); undefined in embedded mode. */
  selfUrl?: () => string | undefined;
  /** What `format=auto` may choose for a tenant (feature flags, from memory); absent: everything. */
  autoChoices?: (tenant: string | null) => AutoChoices;
}

/**
 * The resize path on the API side: validate, read the header, stage the
 * bytes, enqueue a small control message, and wait for the worker's result
 * within the request's deadline. No HTTP here.
 */
export class ResizeService {
  constructor(private readonly deps: ResizeServiceDeps) {}

  /**
   * Admission before the body is read: refuses at once when the queue is full
   * or a declared upload cannot fit in the tenant's staging share or the
   * node's staging area, so an overloaded node never buffers bodies it cannot
   * serve. The reservation opens with a small upfront part of the declared
   * length and grows with `growUpload` as bytes arrive past it. Pair with `release(key)`.
   */
  admit(
    key: string,
    declaredBytes: number | undefined,
    policy: TenantPolicy = NODE_POLICY,
    tenant: string | null = null,
  ): void {
    const { queue, staging, config } = this.deps;
    const max = effectiveMaxInputBytes(policy, config.limits.maxInputBytes);
    if (declaredBytes !== undefined && declaredBytes > max) {
      throw new ProblemError(
        "too-large",
        `the upload is ${declaredBytes} bytes; at most ${max} are accepted`,
        {
          extras: { maxBytes: max },
        },
      );
    }
    const { depth, capacity } = queue.stats();
    if (depth >= capacity) throw this.#overloaded("queue", queueFullMessage(capacity));
    // A body without Content-Length is refused when its bytes arrive, if they do not fit.
    const refusal = staging.refusalFor(tenant, declaredBytes ?? 0);
    if (refusal) {
      this.deps.metrics.uploadRefusals.inc({
        limit: refusal === "tenant-share" ? "tenant-share" : "staging",
      });
      throw this.#stagingProblem(refusal);
    }
    staging.open(key, tenant, staging.upfrontFor(declaredBytes ?? 0));
  }

  /** Adds bytes that arrived to an upload's reservation; the answer to send when they do not fit. */
  growUpload(key: string, bytes: number): ProblemError | null {
    const refusal = this.deps.staging.grow(key, bytes);
    return refusal ? this.#stagingProblem(refusal) : null;
  }

  release(key: string): void {
    this.deps.staging.release(key);
  }

  #stagingProblem(refusal: StagingRefusal): ProblemError {
    const { staging } = this.deps;
    if (refusal === "staging-full") {
      return this.#overloaded(
        "staging",
        `the upload staging area is full (${mib(staging.bytes)} of ${mib(staging.maxBytes)} MiB in use)`,
      );
    }
    const retryAfterS = this.deps.drain.retryAfterS(this.deps.queue.stats().depth + 1);
    return new ProblemError(
      "staging-share-exceeded",
      `this account's uploads already hold its share of the upload staging area (${mib(staging.tenantShareBytes)} MiB); other accounts are still served — wait for responses before sending more, retry after ${retryAfterS} s`,
      { retryAfterS, extras: { shareBytes: staging.tenantShareBytes } },
    );
  }

  async resize(request: ResizeRequest): Promise<ResizeResponse> {
    const { limits, queue: queueConfig } = this.deps.config;
    const options = parseResizeOptions(request.query, limits);
    const probeStarted = nowMs();
    const probe = await probeImage(request.input, limits);
    const choices = this.deps.autoChoices?.(request.tenant);
    const { spec, variesByAccept } = planResize(
      options,
      probe,
      request.accept,
      limits,
      request.policy,
      choices,
    );
    const timings: ResizeTimings = { probe: nowMs() - probeStarted, queue: 0, fetch: 0, process: 0, cpu: 0 };
    const etag = etagFor(request.input, spec);
    if (matchesIfNoneMatch(request.ifNoneMatch, etag)) {
      const work = { ...unworked("resize", request.input.length), inFormat: probe.format };
      return { kind: "not-modified", etag, varyAccept: variesByAccept, probe, timings, work };
    }
    const id = randomUUID();
    const job: JobMessage = {
      id,
      tenant: request.tenant,
      spec,
      input: {
        node: this.deps.nodeId,
        key: request.stagingKey,
        bytes: request.input.length,
        url: this.deps.selfUrl?.(),
      },
      deadline: Date.now() + queueConfig.deadlineMs,
      enqueuedAt: Date.now(),
    };
    const outcome = await this.#run(job, request);
    Object.assign(timings, {
      queue: outcome.timings.queueMs,
      fetch: outcome.timings.fetchMs,
      process: outcome.timings.processMs,
      cpu: outcome.timings.cpuMs,
    });
    const work = billedWork(request.input, probe, outcome);
    if (!outcome.ok) throw new WorkerProblemError(outcome.problem, work);
    return {
      kind: "image",
      data: outcome.data,
      contentType: MIME_TYPES[outcome.info.format],
      etag,
      varyAccept: variesByAccept,
      info: outcome.info,
      probe,
      timings,
      work,
    };
  }

  async #run(job: JobMessage, request: ResizeRequest) {
    const { staging, pending, queue } = this.deps;
    staging.fill(request.stagingKey, request.input);
    const deadline = AbortSignal.timeout(Math.max(0, job.deadline - Date.now()));
    const notQueued = new AbortController();
    // Wait before enqueueing: a fast worker may answer before enqueue returns.
    const waiting = pending.wait(job.id, AbortSignal.any([deadline, request.signal, notQueued.signal]));
    try {
      // A fleet's queue is briefly unavailable while its Raft group elects a leader: retried within the deadline.
      await enqueueWithin(queue, job, job.deadline, { signal: request.signal });
    } catch (error) {
      notQueued.abort();
      if (error instanceof QueueFullError) {
        throw this.#overloaded("queue", error.message);
      }
      if (error instanceof QueueUnavailableError) {
        throw new ProblemError("queue-unavailable", `${error.message}`, {
          retryAfterS: error.retryAfterS,
          cause: error,
        });
      }
      throw error;
    }
    const outcome = await waiting;
    if (!outcome) throw this.#timedOut(request.signal.aborted);
    this.deps.drain.record();
    return outcome;
  }

  #overloaded(what: "queue" | "staging", detail: string): ProblemError {
    const retryAfterS = this.deps.drain.retryAfterS(this.deps.queue.stats().depth + 1);
    return new ProblemError("overloaded", `${detail}; retry after ${retryAfterS} s`, {
      retryAfterS,
      extras: { limit: what },
    });
  }

  #timedOut(clientGone: boolean): ProblemError {
    const ms = this.deps.config.queue.deadlineMs;
    return new ProblemError(
      "timeout",
      clientGone
        ? "the client closed the connection before the image was ready"
        : `the image was not ready within the ${ms} ms request deadline; the service is busy, retry later`,
      {
        retryAfterS: clientGone ? undefined : this.deps.drain.retryAfterS(this.deps.queue.stats().depth + 1),
      },
    );
  }
}

/** What a job's outcome bills: bytes and pixels both ways, formats, and the worker's time and CPU. */
function billedWork(input: Buffer, probe: Probe, outcome: JobOutcome): BilledWork {
  const { queueMs, processMs, cpuMs } = outcome.timings;
  const measured = {
    op: "resize" as const,
    inBytes: input.length,
    inFormat: probe.format,
    queueMs,
    processMs,
    cpuMs,
  };
  if (!outcome.ok) return { ...measured, outBytes: 0, inPixels: 0, outPixels: 0, outFormat: null };
  const { info } = outcome;
  return {
    ...measured,
    outBytes: outcome.data.length,
    // Frames decoded are the frames written: one unless animated output was asked for.
    inPixels: probe.width * probe.height * info.pages,
    outPixels: info.width * info.height * info.pages,
    outFormat: info.format,
  };
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}
