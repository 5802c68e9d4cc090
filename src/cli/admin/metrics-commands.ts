import type { Command } from "commander";
import { formatBand, formatValue, sparkline } from "../../ops/units.js";
import {
  type AdminClient,
  AdminClientError,
  type Alert,
  type FleetNode,
  type MetricsOverview,
  type SeriesHistory,
} from "./client.js";
import {
  type ConnectionFlags,
  clientFrom,
  connectionOptions,
  emit,
  instantOrAgo,
  run,
  usageExitCodes,
} from "./common.js";
import { type Column, renderTable, shortDate } from "./table.js";

type Summary = MetricsOverview["items"][number];

interface MetricsFlags extends ConnectionFlags {
  node?: string;
  since?: string;
}

/** Points shown in the table under a series' sparkline; the sparkline covers them all. */
const TABLE_POINTS = 12;
/** A node's /readyz gets this long; a silent node is reported, not waited for. */
const READYZ_TIMEOUT_MS = 2000;
/** The series `status` shows. */
const KEY_SERIES = [
  "request_rate",
  "error_rate",
  "latency_p99",
  "rejection_rate",
  "queue_depth",
  "queue_oldest_age",
  "worker_utilisation",
  "disk_free",
];

export function registerMetricsCommands(program: Command): void {
  usageExitCodes(
    connectionOptions(
      program
        .command("metrics")
        .description(
          "every key series now, with its baseline (usually mean ± stddev) and outlier nodes; with SERIES, its recent history",
        )
        .argument("[series]", "one series, e.g. latency_p99 (without it: all of them)")
        .option("--node <id>", "one node's values instead of the fleet's")
        .option(
          "--since <when>",
          "with SERIES: from this long ago (1h, 24h, 7d) or this date-time",
          instantOrAgo,
        ),
    ),
  ).action(run(metrics));
  usageExitCodes(
    connectionOptions(
      program
        .command("status")
        .description(
          "fleet health at a glance: healthy or degraded (and why), nodes, key series, firing alerts",
        ),
    ),
  ).action(run(status));
}

async function metrics(series: string | undefined, flags: MetricsFlags): Promise<void> {
  const client = clientFrom(flags);
  if (series !== undefined) {
    const history = await client.metric(series, { node: flags.node, since: flags.since });
    emit(flags, {
      json: history,
      quiet: history.points.map((p) => `${p.at} ${p.value}`),
      table: () => historyText(history),
    });
    return;
  }
  const overview = await client.metrics();
  const rows =
    flags.node === undefined
      ? overview.items.map(fleetRow)
      : overview.items.map((s) => nodeRow(s, flags.node ?? ""));
  emit(flags, {
    json: overview,
    quiet: overview.items.map((s) => s.name),
    table: () => renderTable(rows, ROW_COLUMNS),
  });
}

interface Row {
  name: string;
  value: string | null;
  usually: string | null;
  nodes: number;
  summary: string;
}

function fleetRow(s: Summary): Row {
  const b = s.fleet.baseline;
  return {
    name: s.name,
    value: s.fleet.value === null ? null : formatValue(s.unit, s.fleet.value),
    usually: b ? formatBand(s.unit, b.mean, b.stddev) : null,
    nodes: s.nodes.length,
    summary: s.fleet.sentence,
  };
}

function nodeRow(s: Summary, node: string): Row {
  const n = s.nodes.find((x) => x.node === node);
  const b = n?.baseline;
  return {
    name: s.name,
    value: n ? formatValue(s.unit, n.value) : null,
    usually: b ? formatBand(s.unit, b.mean, b.stddev) : null,
    nodes: s.nodes.length,
    summary: !n ? `no recent sample from ${node}` : n.outlier ? `${node} is an outlier` : "",
  };
}

const ROW_COLUMNS: Column<Row>[] = [
  { header: "SERIES", value: (r) => r.name },
  { header: "VALUE", value: (r) => r.value, align: "right" },
  { header: "USUALLY", value: (r) => r.usually, align: "right" },
  { header: "NODES", value: (r) => r.nodes, align: "right" },
  { header: "SUMMARY", value: (r) => r.summary },
];

/** Header, a sparkline of every point, and the last few points as a table. */
function historyText(h: SeriesHistory): string {
  const where = h.node ?? "fleet";
  const lines = [`${h.name} (${h.title}), ${where}, ${shortDate(h.since)} to ${shortDate(h.until)}`];
  const b = h.baseline;
  lines.push(
    b
      ? `usually ${formatBand(h.unit, b.mean, b.stddev)} (${b.basis === "hour-of-day" ? "at this hour of day" : "over the baseline window"}, ${b.samples} samples)`
      : "no baseline yet (it needs about 6 hours of history)",
  );
  if (h.points.length === 0) return `${lines.join("\n")}\nno points in this range\n`;
  const values = h.points.map((p) => p.value);
  const fmt = (v: number) => formatValue(h.unit, v);
  lines.push(`${sparkline(values)}  min ${fmt(Math.min(...values))}, max ${fmt(Math.max(...values))}`, "");
  const recent = h.points.slice(-TABLE_POINTS);
  const table = renderTable(recent, [
    { header: "AT", value: (p) => shortDate(p.at, true) },
    { header: "VALUE", value: (p) => fmt(p.value), align: "right" },
    { header: "OF", value: (p) => (p.resolution === "hour" ? "hour mean" : "sample") },
  ]);
  return `${lines.join("\n")}\n${table}`;
}

interface NodeHealth {
  id: string;
  roles: string[];
  url: string;
  /** Null: /readyz did not answer. */
  ready: boolean | null;
  reasons: string[];
}

interface Status {
  healthy: boolean;
  reasons: string[];
  nodes: NodeHealth[];
  series: Summary[];
  /** Null when the node has no alerts API. */
  alerts: Alert[] | null;
}

async function status(flags: ConnectionFlags): Promise<void> {
  const client = clientFrom(flags);
  const [nodes, overview, alerts] = await Promise.all([
    client.nodes(),
    client.metrics(),
    firingAlerts(client),
  ]);
  const health = await Promise.all(nodes.items.map(readiness));
  const reasons = degradedReasons(health, alerts);
  const result: Status = {
    healthy: reasons.length === 0,
    reasons,
    nodes: health,
    series: overview.items.filter((s) => KEY_SERIES.includes(s.name)),
    alerts,
  };
  emit(flags, {
    json: result,
    quiet: [result.healthy ? "healthy" : "degraded"],
    table: () => statusText(result),
  });
}

/** Firing alerts, or null while the node has no alerts API (404). */
async function firingAlerts(client: AdminClient): Promise<Alert[] | null> {
  try {
    return (await client.listAlerts({ state: "firing" })).items;
  } catch (error) {
    if (error instanceof AdminClientError && error.problem?.status === 404) return null;
    throw error;
  }
}

/** Asks the node itself (its discovery URL) whether it takes work. */
async function readiness(node: FleetNode): Promise<NodeHealth> {
  const base = { id: node.id, roles: node.roles, url: node.url };
  if (!node.url) return { ...base, ready: null, reasons: ["not listening yet"] };
  const controller = new AbortController();
  // A ref'd timer: see refTimeout in client.ts for why not AbortSignal.timeout.
  const timer = setTimeout(() => controller.abort(), READYZ_TIMEOUT_MS);
  try {
    const response = await fetch(`${node.url.replace(/\/+$/, "")}/readyz`, { signal: controller.signal });
    const body = (await response.json().catch(() => ({}))) as { reasons?: unknown };
    const reasons = Array.isArray(body.reasons) ? body.reasons.map(String) : [];
    return { ...base, ready: response.ok, reasons };
  } catch {
    return {
      ...base,
      ready: null,
      reasons: [`no answer from ${node.url}/readyz within ${READYZ_TIMEOUT_MS} ms`],
    };
  } finally {
    clearTimeout(timer);
  }
}

function degradedReasons(nodes: NodeHealth[], alerts: Alert[] | null): string[] {
  const reasons: string[] = [];
  if (nodes.length === 0) reasons.push("no node has registered");
  for (const n of nodes) {
    if (n.ready === false) reasons.push(`${n.id} not ready (${n.reasons.join(", ") || "no reason given"})`);
    if (n.ready === null) reasons.push(`${n.id} unreachable (${n.reasons.join(", ")})`);
  }
  if (alerts && alerts.length > 0) {
    const critical = alerts.filter((a) => a.severity === "critical").length;
    reasons.push(
      `${alerts.length} alert${alerts.length === 1 ? "" : "s"} firing${critical > 0 ? ` (${critical} critical)` : ""}`,
    );
  }
  return reasons;
}

function statusText(s: Status): string {
  const head = s.healthy ? "healthy" : `degraded: ${s.reasons.join("; ")}`;
  const nodes =
    s.nodes.length === 0
      ? "no node has registered\n"
      : renderTable(s.nodes, [
          { header: "NODE", value: (n) => n.id },
          { header: "ROLES", value: (n) => n.roles },
          { header: "READY", value: (n) => (n.ready === null ? "unreachable" : n.ready ? "yes" : "no") },
          { header: "REASONS", value: (n) => n.reasons, maxWidth: 60 },
        ]);
  const series = renderTable(s.series.map(fleetRow), ROW_COLUMNS);
  const alerts =
    s.alerts === null
      ? "(this node has no alerts API)\n"
      : s.alerts.length === 0
        ? "no alert firing\n"
        : renderTable(s.alerts, [
            { header: "SEVERITY", value: (a) => a.severity },
            { header: "SINCE", value: (a) => shortDate(a.startedAt) },
            { header: "SUMMARY", value: (a) => a.summary, maxWidth: 100 },
          ]);
  return `${head}\n\nNODES\n${nodes}\nKEY SERIES\n${series}\nALERTS\n${alerts}`;
}
