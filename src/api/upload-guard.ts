import type { Config } from "../config/schema.js";
import { ProblemError } from "../errors/problem.js";
import { nowMs } from "../util/time.js";

/** How fast an upload must arrive (`uploads.*` in the config). */
export type UploadPace = Config["uploads"];

/** The bound an upload was refused at, as the `limit` label of `imgfleet_upload_refusals_total`. */
export type UploadLimit = "headers" | "rate" | "deadline" | "tenant-share" | "staging";

/** Staging's answer to more bytes for this upload: null when they fit, else the answer to send. */
export type GrowStaging = (bytes: number) => ProblemError | null;

export interface UploadGuardOptions {
  pace: UploadPace;
  grow: GrowStaging;
  /** Called once when the upload is refused: the caller closes the connection (the rest of the body is never read) and counts it. */
  onRefused: (limit: UploadLimit) => void;
}

/** Checks per window quarter: fine enough that a cut-off comes within ~25% of the window, cheap for hundreds of uploads. */
const CHECKS_PER_WINDOW = 4;

/**
 * One upload's body as it arrives: each chunk grows the upload's staging
 * reservation (so the upload holds what it has sent, never what it declared),
 * and a timer cuts off a client that sends slower than the floor after the
 * grace, or has not finished by the deadline. A cut-off is a ProblemError the
 * body's reader receives (408, or 429/503 at a staging bound) and answers.
 */
export class UploadGuard {
  readonly #options: UploadGuardOptions;
  readonly #startedMs = nowMs();
  /** Bytes received at each check, oldest first, spanning at least one window. */
  readonly #samples: { atMs: number; bytes: number }[] = [{ atMs: this.#startedMs, bytes: 0 }];
  #received = 0;
  #timer: NodeJS.Timeout | undefined;
  #refusal: ProblemError | undefined;
  #listeners: ((problem: ProblemError) => void)[] = [];

  constructor(options: UploadGuardOptions) {
    this.#options = options;
    const { windowMs } = options.pace;
    const tickMs = Math.min(1000, Math.max(25, Math.floor(windowMs / CHECKS_PER_WINDOW)));
    this.#timer = setInterval(() => this.#check(), tickMs);
    this.#timer.unref();
  }

  /** Bytes counted so far. */
  get received(): number {
    return this.#received;
  }

  /** Counts bytes that arrived; throws the refusal when they do not fit in staging or the upload was cut off. */
  add(bytes: number): void {
    if (this.#refusal) throw this.#refusal;
    const refused = this.#options.grow(bytes);
    if (refused)
      throw this.#refuse(refused.code === "staging-share-exceeded" ? "tenant-share" : "staging", refused);
    this.#received += bytes;
  }

  /** Calls `listener` with the refusal when the timer cuts the upload off (at once when it already has). */
  onRefusal(listener: (problem: ProblemError) => void): void {
    if (this.#refusal) listener(this.#refusal);
    else if (this.#timer) this.#listeners.push(listener);
  }

  /** Rejects with the refusal when the upload is cut off; never settles otherwise. */
  refused(): Promise<never> {
    return new Promise((_, reject) => this.onRefusal(reject));
  }

  /** The body has all arrived, or the request has ended: no more checks. Idempotent. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners = [];
  }

  #check(): void {
    const now = nowMs();
    const elapsedMs = now - this.#startedMs;
    const { timeoutMs } = this.#options.pace;
    if (elapsedMs >= timeoutMs) {
      this.#cutOff("deadline", `the upload did not arrive within ${timeoutMs} ms`);
      return;
    }
    this.#samples.push({ atMs: now, bytes: this.#received });
    const rate = this.#windowRate(now, elapsedMs);
    const { minBytesPerSecond, windowMs } = this.#options.pace;
    if (rate !== undefined && rate < minBytesPerSecond) {
      this.#cutOff(
        "rate",
        `the upload arrived at ${Math.floor(rate)} bytes/s over the last ${windowMs} ms; at least ${minBytesPerSecond} bytes/s are required`,
      );
    }
  }

  /** Bytes per second over the last window, once the grace has passed and a whole window has been seen. */
  #windowRate(now: number, elapsedMs: number): number | undefined {
    const { graceMs, windowMs } = this.#options.pace;
    // Keep the newest sample at or before the window's start as its base.
    while (this.#samples.length > 1 && (this.#samples[1]?.atMs ?? now) <= now - windowMs)
      this.#samples.shift();
    const base = this.#samples[0];
    if (elapsedMs < graceMs || elapsedMs < windowMs || !base) return undefined;
    const spanMs = now - base.atMs;
    return spanMs > 0 ? ((this.#received - base.bytes) * 1000) / spanMs : undefined;
  }

  #cutOff(limit: "rate" | "deadline", detail: string): void {
    const problem = new ProblemError(
      "upload-too-slow",
      `${detail} (${this.#received} bytes received); the connection is closed — retry on a faster connection or with a smaller image`,
      { extras: { limit, receivedBytes: this.#received } },
    );
    const listeners = this.#listeners;
    this.#refuse(limit, problem);
    for (const listener of listeners) listener(problem);
  }

  #refuse(limit: UploadLimit, problem: ProblemError): ProblemError {
    if (this.#refusal) return this.#refusal;
    this.#refusal = problem;
    this.stop();
    this.#options.onRefused(limit);
    return problem;
  }
}
