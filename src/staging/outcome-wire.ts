import type { JobOutcome } from "./job-outcome.js";

/** The header that carries a job outcome's metadata; the image bytes travel as the body. */
export const OUTCOME_HEADER = "x-imgfleet-outcome";

type OutcomeMeta = Omit<Extract<JobOutcome, { ok: true }>, "data"> | Extract<JobOutcome, { ok: false }>;

export function outcomeHeader(outcome: JobOutcome): string {
  const meta: OutcomeMeta = outcome.ok
    ? { ok: true, info: outcome.info, timings: outcome.timings }
    : { ok: false, problem: outcome.problem, timings: outcome.timings };
  return Buffer.from(JSON.stringify(meta)).toString("base64url");
}

export function outcomeBody(outcome: JobOutcome): Buffer {
  return outcome.ok ? outcome.data : Buffer.alloc(0);
}

/** Rebuilds an outcome from its header and body; null when the header is not one. */
export function parseOutcome(header: string | undefined, body: Buffer): JobOutcome | null {
  if (!header) return null;
  try {
    const meta = JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as OutcomeMeta;
    if (typeof meta !== "object" || meta === null || typeof meta.ok !== "boolean" || !meta.timings)
      return null;
    return meta.ok ? { ...meta, data: body } : meta;
  } catch {
    return null;
  }
}
