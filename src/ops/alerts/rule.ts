import type { Config } from "../../config/schema.js";
import type { HistoryStore } from "../history-store.js";
import type { Finding, Severity } from "./model.js";

export type AlertSettings = Config["ops"]["alerts"];

/** What rules read of the metric history (the control role's HistoryStore). */
export type HistoryReader = Pick<HistoryStore, "points" | "latest" | "baseline">;

/** A control singleton's lease as the evaluator saw it. */
export interface LeaseView {
  name: string;
  /** Null: nobody holds it (absent, or not renewed within its TTL). */
  holder: string | null;
  /** Since when this evaluator has seen it unheld (epoch ms); null while held. */
  missingSince: number | null;
}

/** Everything a rule may look at in one evaluation. Rules read; they never write. */
export interface RuleContext {
  /** Epoch ms of this evaluation (a fake clock in tests). */
  now: number;
  settings: AlertSettings;
  /** ops.sampleIntervalMs: the spacing of points, and how stale "latest" may be. */
  sampleIntervalMs: number;
  /** usage.spool.maxBytes: the bound the spool rules measure against. */
  spoolMaxBytes: number;
  history: HistoryReader;
  /** Every node the evaluator knows (in discovery, or sampled within the last hour) → its last sample (epoch ms). */
  nodes: ReadonlyMap<string, number>;
  leases: readonly LeaseView[];
}

/**
 * A built-in rule: a condition over the history (or the fleet's state) that
 * yields one finding per subject for which it holds. The engine evaluates
 * every rule each cycle; a rule that throws leaves its open alerts as they
 * are, so a database hiccup never resolves (or re-fires) anything.
 */
export interface Rule {
  /** Stable: alerts, webhooks, silences and docs/alerts.md refer to it. */
  id: string;
  /** The usual severity (a finding may raise it). */
  severity: Severity;
  /** The condition in words, for docs and the console. */
  condition: string;
  runbook: string;
  evaluate(ctx: RuleContext): Promise<Finding[]>;
}

/** A "latest" value older than this many sample intervals is stale: the node is silent, not healthy. */
export const FRESH_INTERVALS = 3;

export function freshMs(ctx: RuleContext): number {
  return ctx.sampleIntervalMs * FRESH_INTERVALS;
}

/**
 * Whether points cover a window ending now: the oldest is within one and a
 * half sample intervals of the window's start. A condition "for N minutes"
 * needs N minutes of evidence, not one sample.
 */
export function coversWindow(points: readonly { at: number }[], ctx: RuleContext, windowMs: number): boolean {
  const first = points[0];
  if (!first || points.length < 2) return false;
  return first.at <= ctx.now - windowMs + ctx.sampleIntervalMs * 1.5;
}

/** A finding of `rule` about `subject`, with the rule's severity and runbook. */
export function finding(
  rule: Rule,
  subject: string,
  summary: string,
  figures: Finding["figures"],
  severity: Severity = rule.severity,
): Finding {
  return { rule: rule.id, subject, severity, summary, runbook: rule.runbook, figures };
}
