import { PROBLEM_TYPES, type ProblemCode, problemTypeUri } from "./problem-types.js";

export interface ProblemSubject {
  tenant: string;
  keyId: string;
}

/**
 * The longest wait an answer names, in seconds (a day). Limits are checked
 * where they are set, but a tenant stored before that check, or a tiny share
 * of a slow rate across many nodes, must not put 1e+300 in a header.
 */
export const MAX_WAIT_S = 86_400;

/** Whole seconds for a header (Retry-After, RateLimit-*): at least `min`, at most MAX_WAIT_S, never NaN or an exponent. */
export function headerSeconds(seconds: number, min = 1): number {
  if (Number.isNaN(seconds)) return min;
  return Math.min(MAX_WAIT_S, Math.max(min, Math.ceil(seconds)));
}

/** Extra members of a problem document: what was wrong and what to do. */
export type ProblemExtras = Record<string, string | number | boolean | readonly string[] | undefined>;

/**
 * An error that answers a request with a problem+json document. `detail`
 * is written for the client: it names what was wrong and what to do.
 */
export class ProblemError extends Error {
  override readonly name = "ProblemError";
  readonly code: ProblemCode;
  readonly status: number;
  readonly extras: ProblemExtras;
  /** Whole seconds, 1 to MAX_WAIT_S, for 503/429 answers (Retry-After). */
  readonly retryAfterS: number | undefined;
  /** Response headers that belong with this answer (WWW-Authenticate, RateLimit-*). */
  readonly headers: Readonly<Record<string, string>>;
  /** The authenticated caller a refusal applies to (suspended, over its limits), so it can be logged and metered. */
  readonly subject: ProblemSubject | undefined;

  constructor(
    code: ProblemCode,
    detail: string,
    options: {
      extras?: ProblemExtras;
      retryAfterS?: number;
      headers?: Record<string, string>;
      subject?: ProblemSubject;
      cause?: unknown;
    } = {},
  ) {
    super(detail, { cause: options.cause });
    this.code = code;
    this.status = PROBLEM_TYPES[code].status;
    this.extras = options.extras ?? {};
    this.retryAfterS = options.retryAfterS === undefined ? undefined : headerSeconds(options.retryAfterS);
    this.headers = options.headers ?? {};
    this.subject = options.subject;
  }

  toJSON(instance?: string): ProblemDocument {
    return {
      type: problemTypeUri(this.code),
      title: PROBLEM_TYPES[this.code].title,
      status: this.status,
      detail: this.message,
      ...(instance ? { instance } : {}),
      ...this.extras,
    };
  }
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  [extra: string]: unknown;
}

/** A serialisable problem, as it crosses the worker process boundary. */
export interface WireProblem {
  code: ProblemCode;
  detail: string;
}

export function fromWire(p: WireProblem): ProblemError {
  return new ProblemError(p.code, p.detail);
}
