import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { describeRules } from "../../src/ops/alerts/rules.js";
import { useNode } from "../helpers/node.js";

/**
 * The Grafana dashboard and Prometheus alert rules in deploy/ are for sites
 * that run those already. They must parse, refer only to metrics a node
 * really exports (a renamed metric would leave a panel empty and an alert
 * silent), and say the same as imgfleet's built-in alerts.
 */

const ROOT = join(import.meta.dirname, "../..");
const DASHBOARD = join(ROOT, "deploy/grafana/imgfleet-dashboard.json");
const ALERTS = join(ROOT, "deploy/prometheus/imgfleet-alerts.yml");

interface AlertRule {
  alert: string;
  record?: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

interface Panel {
  id: number;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets: { expr: string; refId: string }[];
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
};
const alertFile = parse(readFileSync(ALERTS, "utf8")) as { groups: { name: string; rules: AlertRule[] }[] };
/** Alerting rules; the recording rules (series and baselines the anomaly alerts read) have no `alert`. */
const rules = alertFile.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
const dashboardExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
/** Every expression of the file, recording rules included: they read the node's metrics too. */
const alertExprs = alertFile.groups.flatMap((g) => g.rules).map((r) => r.expr);

function metricNames(exprs: readonly string[]): Set<string> {
  return new Set(
    exprs.flatMap((e) => [...e.matchAll(/\b(imgfleet_[a-z0-9_]+)\b/g)].map((m) => m[1] as string)),
  );
}

/** Every sample name a node's /metrics can hold: families from `# TYPE`, histograms with their suffixes. */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name = "", type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(name + s);
  }
  return names;
}

describe("deploy/ monitoring files against a running node", () => {
  const node = useNode();

  it("refer only to metrics the node exports", async () => {
    const exported = exportedNames(await (await fetch(`${node().url}/metrics`)).text());
    expect(exported.size).toBeGreaterThan(50);
    const used = metricNames([...dashboardExprs, ...alertExprs]);
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
  });
});

describe("deploy/prometheus/imgfleet-alerts.yml", () => {
  const builtIn = new Map(describeRules().map((r) => [r.id, r]));

  it("has a severity, a summary and the built-in rule's runbook line, word for word, on every rule", () => {
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      const id = rule.labels.imgfleet_rule ?? "";
      const mirrored = builtIn.get(id);
      expect(mirrored, `${rule.alert}: imgfleet_rule '${id}' is not a built-in rule`).toBeDefined();
      expect(rule.labels.severity, rule.alert).toBe(mirrored?.severity);
      expect(rule.annotations.runbook, rule.alert).toBe(mirrored?.runbook);
      expect(rule.annotations.summary, rule.alert).toBeTruthy();
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smhd]$/);
    }
  });

  it("mirrors every built-in rule", () => {
    const mirrored = new Set(rules.map((r) => r.labels.imgfleet_rule));
    expect([...builtIn.keys()].filter((id) => !mirrored.has(id))).toEqual([]);
  });

  it("covers error rate, oldest job age, spool backlog, node down and the disk-full forecast", () => {
    const byRule = new Map(rules.map((r) => [r.labels.imgfleet_rule, r]));
    for (const id of ["error-rate", "oldest-job-age", "spool-backlog", "node-silent", "disk-full"]) {
      expect(byRule.has(id), id).toBe(true);
    }
    expect(byRule.get("node-silent")?.expr).toMatch(/^up\{job="imgfleet"\} == 0$/);
    expect(byRule.get("disk-full")?.expr).toMatch(/predict_linear\(imgfleet_disk_free_bytes/);
    expect(byRule.get("error-rate")?.expr).toMatch(/status=~"5\.\."/);
  });
});

describe("deploy/grafana/imgfleet-dashboard.json", () => {
  it("has a panel for each key series, with percentiles from the histograms", () => {
    const all = dashboardExprs.join("\n");
    for (const metric of [
      "imgfleet_http_request_duration_seconds_count",
      "imgfleet_http_request_duration_seconds_bucket",
      "imgfleet_queue_depth",
      "imgfleet_queue_oldest_age_seconds",
      "imgfleet_workers",
      "imgfleet_rejections_total",
      "imgfleet_usage_spool_bytes",
      "imgfleet_usage_oldest_uncommitted_batch_age_seconds",
      "imgfleet_usage_aggregation_lag_seconds_bucket",
      "imgfleet_identity_propagation_seconds_bucket",
      "imgfleet_process_process_cpu_seconds_total",
      "imgfleet_process_process_resident_memory_bytes",
      "imgfleet_process_nodejs_eventloop_lag_p99_seconds",
      "imgfleet_disk_free_bytes",
    ]) {
      expect(all, metric).toContain(metric);
    }
    expect(all).toMatch(
      /histogram_quantile\(0\.5, sum by \(le\) \(rate\(imgfleet_http_request_duration_seconds_bucket/,
    );
    expect(all).toMatch(
      /histogram_quantile\(0\.99, sum by \(le\) \(rate\(imgfleet_http_request_duration_seconds_bucket/,
    );
  });

  it("is a well-formed dashboard: unique panel ids, a data source variable, a query on every panel", () => {
    expect(dashboard.uid).toBe("imgfleet-overview");
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(["datasource", "job", "instance"]);
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      expect(panel.gridPos.w * panel.gridPos.h, panel.title).toBeGreaterThan(0);
      for (const t of panel.targets)
        expect(t.expr, panel.title).toMatch(/job="\$job", instance=~"\$instance"/);
    }
  });
});
