import { ANOMALY_RULES } from "./anomaly-rules.js";
import { FORECAST_RULES } from "./forecast.js";
import { LIMIT_RULES } from "./limit-rules.js";
import type { Rule } from "./rule.js";

export type { AlertSettings, HistoryReader, LeaseView, Rule, RuleContext } from "./rule.js";

/**
 * Every built-in rule, in the order the docs list them: hard limits,
 * anomalies against the baseline, forecasts. Thresholds come from
 * `ops.alerts`; docs/alerts.md describes each rule and its runbook line.
 */
export const BUILTIN_RULES: readonly Rule[] = [...LIMIT_RULES, ...ANOMALY_RULES, ...FORECAST_RULES];

/** id, severity, condition and runbook of every rule, for the docs and the admin API. */
export function describeRules(rules: readonly Rule[] = BUILTIN_RULES) {
  return rules.map(({ id, severity, condition, runbook }) => ({ id, severity, condition, runbook }));
}
