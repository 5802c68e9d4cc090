/** `critical`: act now (requests fail or will soon). `warning`: act today (something drifts or fills up). */
export type Severity = "critical" | "warning";

export type AlertState = "firing" | "resolved";

/** A figure of an alert: what the summary states, as numbers a receiver can use. */
export type Figures = Record<string, number | string | null>;

/**
 * What a rule found in one evaluation: one condition on one subject (a node,
 * a lease, the fleet). Rules return findings; the engine turns them into
 * alert episodes.
 */
export interface Finding {
  /** The rule's id, e.g. `oldest-job-age` or `anomaly.latency_p99`. */
  rule: string;
  /** What it is about: a node id, a lease name, or `fleet`. */
  subject: string;
  severity: Severity;
  /** Plain language with the figures: what is wrong, where, by how much. */
  summary: string;
  /** One line saying what to do. */
  runbook: string;
  figures: Figures;
}

/** One alert episode: from the evaluation that first found it to the one that found it gone. */
export interface Alert {
  id: string;
  /** `<rule>:<subject>`: at most one firing alert per key (the de-duplication). */
  key: string;
  rule: string;
  subject: string;
  severity: Severity;
  state: AlertState;
  summary: string;
  runbook: string;
  figures: Figures;
  startedAt: string;
  /** Last evaluation that found the condition (or resolved it). */
  updatedAt: string;
  resolvedAt: string | null;
  ackedAt: string | null;
  /** The admin key that acknowledged it. */
  ackedBy: string | null;
}

export function alertKey(finding: Pick<Finding, "rule" | "subject">): string {
  return `${finding.rule}:${finding.subject}`;
}

/** Rule ids contain no `:`, so the key splits at its first one. */
export function subjectOfKey(key: string): string {
  const at = key.indexOf(":");
  return at < 0 ? "" : key.slice(at + 1);
}
