import { cpus, freemem, loadavg, totalmem } from "node:os";
import { stringify } from "yaml";
import { VERSION } from "../app/version.js";
import { redact } from "../config/redact.js";
import { bytes, codeBlock, duration, facts, num, section, table } from "./markdown.js";
import { metricsSnapshot } from "./metrics-snapshot.js";
import { ReportSanitiser, reduceUrls, secretsOf } from "./sanitise.js";
import {
  channelSecrets,
  deadLetterCounts,
  diskOf,
  identityCounts,
  REPORT_ROWS,
  type ReportSources,
  recentAlerts,
  seriesSummaries,
  tenantIdentities,
  usageTotals,
} from "./sources.js";
import { collectVersions } from "./versions.js";

/**
 * `GET /admin/v1/report` and `imgfleet report`: one Markdown document an
 * administrator reads, vets, and sends to whoever helps them. Each section
 * is gathered on its own, so a database that is down costs its sections,
 * not the report; then the whole text goes through the sanitiser (secrets,
 * API keys, tenant ids and names), whatever a section printed.
 */
export async function buildSupportReport(
  src: ReportSources,
  options: { extraSecrets?: readonly string[]; now?: Date } = {},
): Promise<string> {
  const now = options.now ?? new Date();
  const sanitiser = new ReportSanitiser({
    secrets: [
      ...secretsOf(src.config),
      ...(options.extraSecrets ?? []),
      ...(await channelSecrets(src.db).catch(() => [])),
    ],
    tenants: await tenantIdentities(src.db).catch(() => []),
  });
  const parts = await Promise.all([
    guarded("Versions", () => versions(src)),
    guarded("This node", () => thisNode(src, now)),
    guarded("Fleet", () => fleet(src, now)),
    guarded("Effective configuration", async () => configuration(src)),
    guarded(`Alerts (latest ${REPORT_ROWS})`, () => alerts(src)),
    guarded(`Events (latest ${REPORT_ROWS})`, () => events(src)),
    guarded("Key series now, against their baselines", () => seriesNow(src)),
    guarded("Metric history (last 24 hours)", () => history(src)),
    guarded("This node's metrics now", () => {
      src.refreshMetrics?.();
      return metricsSnapshot(src.metrics);
    }),
    guarded("Usage (last 30 days)", () => usage(src)),
    guarded("Identity", () => identity(src)),
    guarded("Feature flags", () => flags(src)),
    guarded("Dead letters", () => deadLetters(src)),
  ]);
  const text = [header(src, now), ...parts, leftOut()].join("\n");
  return sanitiser.apply(text);
}

async function guarded(title: string, body: () => Promise<string>): Promise<string> {
  try {
    return section(title, await body());
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return section(title, `_Not available from this node: ${reason.split("\n")[0]}_\n`);
  }
}

function header(src: ReportSources, now: Date): string {
  return `# imgfleet support report

Generated ${now.toISOString()} by node ${src.node.id} (imgfleet ${VERSION}, ${src.node.fleet ? "fleet" : "embedded"}).

Read this report before you send it. It holds no tenant names, API keys, admin keys, passwords, cluster or
webhook secrets, and no image data: secrets read \`[redacted]\`, URLs are cut to scheme and host, and tenants
appear as \`tenant-1\`, \`tenant-2\`, … (the same tenant has the same pseudonym throughout this report, and a
different one in the next report). It does name your nodes, their host names and addresses: remove them below
if you must.
`;
}

async function versions(src: ReportSources): Promise<string> {
  const v = await collectVersions(src);
  return facts([
    ["imgfleet", v.imgfleet],
    ["Node.js", v.node],
    ["operating system", v.os],
    ["sharp", v.sharp],
    ["libvips", v.libvips],
    ["nats-server", v.natsServer ?? "not used (embedded)"],
    [`database (${v.database.kind})`, v.database.version],
  ]);
}

async function thisNode(src: ReportSources, now: Date): Promise<string> {
  const disk = await diskOf(src.config.dataDir);
  return facts([
    ["node id", src.node.id],
    ["roles", src.node.roles.join(", ")],
    ["up for", duration(now.getTime() - src.node.startedAt)],
    ["CPU cores", cpus().length],
    [
      "load average (1, 5, 15 min)",
      loadavg()
        .map((l) => l.toFixed(2))
        .join(", "),
    ],
    ["machine memory free / total", `${bytes(freemem())} / ${bytes(totalmem())}`],
    ["main process resident memory", bytes(process.memoryUsage.rss())],
    ["data directory disk free / size", disk ? `${bytes(disk.free)} / ${bytes(disk.size)}` : "unknown"],
  ]);
}

async function fleet(src: ReportSources, now: Date): Promise<string> {
  const nodes = await src.nodes();
  const versions = new Set(nodes.map((n) => n.version));
  const warning =
    versions.size > 1 ? `\n**Nodes run different versions: ${[...versions].join(", ")}.**\n` : "";
  const rows = nodes.map((n) => [
    n.id,
    n.roles.join(","),
    n.version,
    n.url,
    duration(now.getTime() - n.startedAt),
    `${duration(now.getTime() - n.seenAt)} ago`,
    n.load.inFlight,
    n.load.queueDepth,
    n.load.workers ? `${n.load.workersBusy}/${n.load.workers}` : "-",
    bytes(n.load.rssBytes),
  ]);
  return `${nodes.length} node(s) in discovery.${warning}\n\n${table(
    ["node", "roles", "version", "url", "up", "seen", "in flight", "queue", "workers busy", "rss"],
    rows,
  )}`;
}

function configuration(src: ReportSources): string {
  const shown = redact(reduceUrls(src.config));
  return `Secrets are \`[redacted]\`; every URL is reduced to its scheme and host.\n\n${codeBlock("yaml", stringify(shown))}`;
}

async function alerts(src: ReportSources): Promise<string> {
  const rows = await recentAlerts(src.db);
  if (rows.length === 0) return "No alert has fired.\n";
  return table(
    ["started", "state", "severity", "rule", "subject", "summary"],
    rows.map((a) => [
      a.started_at.toISOString(),
      a.state,
      a.severity,
      a.rule,
      a.key.slice(a.key.indexOf(":") + 1),
      a.summary,
    ]),
  );
}

async function events(src: ReportSources): Promise<string> {
  const rows = await src.events(REPORT_ROWS);
  if (rows.length === 0) return "No event recorded.\n";
  return table(
    ["at", "kind", "node", "message"],
    rows.map((e) => [e.at, e.kind, e.node, e.message]),
  );
}

async function seriesNow(src: ReportSources): Promise<string> {
  if (!src.seriesNow) return "_This node has no metric history to summarise._\n";
  const series = await src.seriesNow();
  if (series.every((s) => s.fleet.sentence.endsWith("no recent sample"))) {
    return "No recent samples: the control role samples every node each `ops.sampleIntervalMs` while `ops.sampling` is on.\n";
  }
  return table(
    ["series", "now", "outliers"],
    series.map((s) => [
      s.title,
      s.fleet.sentence,
      s.nodes
        .filter((n) => n.outlier)
        .map((n) => n.node)
        .join(", "),
    ]),
  );
}

async function history(src: ReportSources): Promise<string> {
  const rows = await seriesSummaries(src.db);
  if (rows.length === 0) {
    return "No samples in the last 24 hours (the control role samples every node when `ops.sampling` is on).\n";
  }
  return table(
    ["series", "node", "samples", "min", "mean", "max", "last"],
    rows.map((r) => [r.series, r.node, r.samples, num(r.min), num(r.mean), num(r.max), num(r.last)]),
  );
}

async function usage(src: ReportSources): Promise<string> {
  const rows = await usageTotals(src.db);
  if (rows.length === 0) return "No usage recorded in the last 30 days.\n";
  const total = rows.reduce(
    (t, r) => ({
      requests: t.requests + r.requests,
      ok: t.ok + r.ok,
      client: t.client + r.client_errors,
      server: t.server + r.server_errors,
    }),
    { requests: 0, ok: 0, client: 0, server: 0 },
  );
  const shown = rows.slice(0, REPORT_ROWS);
  const more = rows.length - shown.length;
  return `Daily rollups, all tenants: ${total.requests} requests (${total.ok} succeeded, ${total.client} client errors, ${total.server} server errors) from ${rows.length} tenant(s). Tenants are pseudonymised; bytes, pixels and CPU are of successful requests.\n\n${table(
    ["tenant", "requests", "ok", "4xx", "5xx", "in", "out", "megapixels", "CPU s"],
    shown.map((r) => [
      r.tenant_id,
      r.requests,
      r.ok,
      r.client_errors,
      r.server_errors,
      bytes(r.bytes_in),
      bytes(r.bytes_out),
      num(r.pixels_in / 1e6),
      num(r.cpu_ms / 1000),
    ]),
  )}${more > 0 ? `\n…and ${more} quieter tenant(s).\n` : ""}`;
}

async function identity(src: ReportSources): Promise<string> {
  const c = await identityCounts(src.db);
  return facts([
    ...Object.entries(c.tenants).map(([status, n]) => [`tenants ${status}`, n] as const),
    ["live tenant API keys", c.tenantKeys],
    ["live admin keys", c.adminKeys],
  ]);
}

async function flags(src: ReportSources): Promise<string> {
  const all = await src.flags();
  return table(
    ["flag", "known here", "default", "rollout", "tenant overrides (on/off)", "updated", "by"],
    all.map((f) => {
      const values = Object.values(f.tenants);
      const on = values.filter(Boolean).length;
      return [
        f.name,
        f.known ? "yes" : "no",
        f.default ? "on" : "off",
        `${f.percentage}%`,
        `${on}/${values.length - on}`,
        f.updatedAt,
        f.updatedBy,
      ];
    }),
  );
}

async function deadLetters(src: ReportSources): Promise<string> {
  const rows = await deadLetterCounts(src.db);
  const total = rows.reduce((n, r) => n + r.count, 0);
  if (total === 0) return "No dead letters (jobs given up after every attempt failed) in the last 30 days.\n";
  return `${total} dead letter(s) kept (30 days).\n\n${table(
    ["reason", "count", "oldest", "newest"],
    rows.map((r) => [r.reason, r.count, r.oldest.toISOString(), r.newest.toISOString()]),
  )}`;
}

function leftOut(): string {
  return section(
    "Left out on purpose",
    `- tenant names and ids (pseudonyms only), API keys and their secrets, admin keys
- the cluster secret, database and NATS passwords, webhook URLs' paths and secrets
- the audit trail (it names people's keys and addresses), dead letters' job details, and any image data
`,
  );
}
