import { type Command, InvalidArgumentError, Option } from "commander";
import type { AdminClient, CostEstimate, CostSummary, UsageQuery, UsageReport } from "./client.js";
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
import { optionalTenantId, tenantNames } from "./tenant-ref.js";

interface UsageFlags extends ConnectionFlags {
  tenant?: string;
  /** ISO 8601, already resolved from `7d` and the like. */
  from?: string;
  to?: string;
  granularity?: "hour" | "day";
  byOutcome?: boolean;
  csv?: boolean;
}

interface CostFlags extends ConnectionFlags {
  tenant?: string;
  month?: string;
}

export function registerUsageCommands(program: Command): void {
  // `report` is the default, so `imgfleet usage --json` is the report; the parent takes no flags of its own,
  // which leaves `--tenant` and the rest after `usage cost` to `cost`.
  const usage = usageExitCodes(
    program.command("usage").description("usage per tenant and period, and cost estimates (default: report)"),
  );
  connectionOptions(
    usage
      .command("report", { isDefault: true })
      .description("show usage per tenant and period (daily, month to date, unless told otherwise)"),
  )
    .option(
      "--tenant <tenant>",
      "only this tenant, by name or id (default: every tenant, deleted ones included)",
    )
    .option(
      "--from <when>",
      "from this date or date-time (2026-03-01, ISO 8601), or this long ago (7d); default: start of the day (hour) or month (day)",
      instantOrAgo,
    )
    .option("--to <when>", "up to (not including) this date or date-time; default: now", instantOrAgo)
    .addOption(
      new Option("--granularity <unit>", "one row per hour or per day (default: day)").choices([
        "hour",
        "day",
      ]),
    )
    .option("--by-outcome", "one row per outcome (ok, client_error, server_error) with its own quantities")
    .addOption(
      new Option("--csv", "print the node's CSV (RFC 4180) instead of a table").conflicts(["json", "quiet"]),
    )
    .action(run(showUsage));

  connectionOptions(
    usage
      .command("cost")
      .description("estimate a month's bill per tenant from its usage and the node's price plan"),
  )
    .option(
      "--tenant <tenant>",
      "only this tenant, by name or id (default: every tenant with usage that month)",
    )
    .option("--month <YYYY-MM>", "the UTC calendar month (default: the current one, so far)", month)
    .action(run(showCost));
}

/** Checked here so a typo is a usage error (exit 2) naming the flag; the node checks it again. */
export function month(text: string): string {
  const t = text.trim();
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(t)) {
    throw new InvalidArgumentError("expected a month such as 2026-03 (YYYY-MM, UTC)");
  }
  return t;
}

async function showUsage(flags: UsageFlags): Promise<void> {
  const client = clientFrom(flags);
  const query: UsageQuery = {
    tenant: await optionalTenantId(client, flags.tenant),
    from: flags.from,
    to: flags.to,
    granularity: flags.granularity,
    by: flags.byOutcome ? "outcome" : undefined,
  };
  if (flags.csv) {
    process.stdout.write(await client.usageCsv(query));
    return;
  }
  const report = await client.usage(query);
  const names = await namesForTable(client, flags, [
    ...report.rows.map((r) => r.tenant),
    ...(report.tenant ? [report.tenant] : []),
  ]);
  emit(flags, {
    json: report,
    quiet: [...new Set(report.rows.map((r) => r.tenant))],
    table: () => usageTable(report, names),
  });
}

async function showCost(flags: CostFlags): Promise<void> {
  const client = clientFrom(flags);
  const tenant = await optionalTenantId(client, flags.tenant);
  if (tenant !== undefined) {
    const estimate = await client.usageCost({ tenant, month: flags.month });
    const names = await namesForTable(client, flags, [estimate.tenant]);
    emit(flags, { json: estimate, quiet: [estimate.tenant], table: () => costDetails(estimate, names) });
    return;
  }
  const summary = (await client.usageCost({ month: flags.month })) as CostSummary;
  const names = await namesForTable(
    client,
    flags,
    summary.tenants.map((t) => t.tenant),
  );
  emit(flags, {
    json: summary,
    quiet: summary.tenants.map((t) => t.tenant),
    table: () => costTable(summary, names),
  });
}

/** Names beside ids, for a person reading a table; JSON and --quiet output keep the API's ids only. */
async function namesForTable(
  client: AdminClient,
  flags: ConnectionFlags,
  ids: string[],
): Promise<Map<string, string>> {
  return flags.json || flags.quiet ? new Map() : tenantNames(client, ids);
}

/** `acme (ten_…)`, or the id alone when its name is unknown (anonymous usage, a tenant gone). */
function named(id: string, names: ReadonlyMap<string, string>): string {
  const name = names.get(id);
  return name === undefined ? id : `${name} (${id})`;
}

// --- usage table

type Row = UsageReport["rows"][number];
type TableRow = { period: string; tenant: string; name?: string } & Partial<Record<string, string | number>>;

function usageTable(report: UsageReport, names: ReadonlyMap<string, string>): string {
  const unit = report.granularity === "hour" ? "hourly" : "daily";
  const range = `${shortDate(report.from)} to ${shortDate(report.to)}`;
  const whose = report.tenant ? named(report.tenant, names) : "every tenant";
  if (report.rows.length === 0) return `no usage for ${whose} from ${range}\n`;
  const period = (p: string) => (report.granularity === "hour" ? (shortDate(p) ?? p) : p.slice(0, 10));
  const rows: TableRow[] = (report.rows as Row[]).map((r) => ({
    ...r,
    period: period(r.period),
    name: names.get(r.tenant),
  }));
  const tenants = new Set(report.rows.map((r) => r.tenant)).size;
  rows.push({
    ...report.totals,
    period: "total",
    tenant: tenants === 1 ? "1 tenant" : `${tenants} tenants`,
  });
  const columns: Column<TableRow>[] = [
    { header: "PERIOD", value: (r) => r.period },
    { header: "TENANT", value: (r) => r.tenant },
    { header: "NAME", value: (r) => r.name, maxWidth: 30 },
    ...(report.byOutcome ? [{ header: "OUTCOME", value: (r: TableRow) => r.outcome }] : []),
    { header: "REQUESTS", value: (r) => r.requests, align: "right" },
    ...(report.byOutcome
      ? []
      : ([
          { header: "OK", value: (r) => r.succeeded, align: "right" },
          { header: "4XX", value: (r) => r.clientErrors, align: "right" },
          { header: "5XX", value: (r) => r.serverErrors, align: "right" },
        ] satisfies Column<TableRow>[])),
    { header: "BYTES IN", value: (r) => si(r.bytesIn, "B"), align: "right" },
    { header: "BYTES OUT", value: (r) => si(r.bytesOut, "B"), align: "right" },
    { header: "PIXELS IN", value: (r) => si(r.pixelsIn, "px"), align: "right" },
    { header: "PIXELS OUT", value: (r) => si(r.pixelsOut, "px"), align: "right" },
    { header: "CPU", value: (r) => cpu(r.cpuMs), align: "right" },
  ];
  const note = report.byOutcome
    ? ""
    : "bytes, pixels and CPU count successful requests only (what is billed)\n";
  return `${unit} usage of ${whose}, ${range}\n${renderTable(rows, columns)}${note}`;
}

const PREFIXES = ["", "k", "M", "G", "T", "P"];

/** 1234567 B → `1.23 MB`: three significant digits, decimal prefixes (prices are per 10^9 bytes). */
export function si(value: string | number | undefined, unit: string): string | undefined {
  if (typeof value !== "number") return undefined;
  let scaled = value;
  let prefix = 0;
  while (Math.abs(scaled) >= 999.5 && prefix < PREFIXES.length - 1) {
    scaled /= 1000;
    prefix += 1;
  }
  const digits = prefix === 0 ? String(Math.round(scaled)) : scaled.toPrecision(3);
  return `${digits} ${PREFIXES[prefix]}${unit}`;
}

/** CPU milliseconds as ms, s or h, whichever reads best. */
function cpu(ms: string | number | undefined): string | undefined {
  if (typeof ms !== "number") return undefined;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 3_600_000) return `${(ms / 1000).toPrecision(3)} s`;
  return `${(ms / 3_600_000).toFixed(2)} h`;
}

// --- cost

function monthLabel(month: string, partial: boolean): string {
  return partial ? `${month} (month to date, partial)` : month;
}

/** Quantities to 6 decimals at most, without trailing zeros. */
function quantity(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(6)));
}

function costDetails(e: CostEstimate, names: ReadonlyMap<string, string>): string {
  const lines = renderTable(e.lines, [
    { header: "ITEM", value: (l) => l.item },
    { header: "QUANTITY", value: (l) => quantity(l.quantity), align: "right" },
    { header: "UNIT", value: (l) => l.unit },
    { header: "UNIT PRICE", value: (l) => String(l.unitPrice), align: "right" },
    { header: "AMOUNT", value: (l) => l.amount.toFixed(4), align: "right" },
  ]);
  return `cost estimate for ${named(e.tenant, names)}, ${monthLabel(e.month, e.partial)}\n${lines}total ${e.total.toFixed(2)} ${e.currency}\n`;
}

interface CostRow {
  tenant: string;
  name?: string | undefined;
  requests: number;
  gbIn: number;
  gbOut: number;
  megapixels: number;
  cpuHours: number;
  total: string;
}

function costTable(s: CostSummary, names: ReadonlyMap<string, string>): string {
  const head = `cost estimates for ${monthLabel(s.month, s.partial)}, in ${s.currency}\n`;
  if (s.tenants.length === 0) return `${head}no usage that month\n`;
  const rows: CostRow[] = s.tenants.map((e) => ({
    tenant: e.tenant,
    name: names.get(e.tenant),
    ...e.quantities,
    total: e.total.toFixed(2),
  }));
  const sum = (k: keyof CostEstimate["quantities"]) => s.tenants.reduce((acc, e) => acc + e.quantities[k], 0);
  rows.push({
    tenant: "total",
    requests: sum("requests"),
    gbIn: sum("gbIn"),
    gbOut: sum("gbOut"),
    megapixels: sum("megapixels"),
    cpuHours: sum("cpuHours"),
    total: s.total.toFixed(2),
  });
  return (
    head +
    renderTable(rows, [
      { header: "TENANT", value: (r) => r.tenant },
      { header: "NAME", value: (r) => r.name, maxWidth: 30 },
      { header: "REQUESTS", value: (r) => r.requests, align: "right" },
      { header: "GB IN", value: (r) => quantity(r.gbIn), align: "right" },
      { header: "GB OUT", value: (r) => quantity(r.gbOut), align: "right" },
      { header: "MEGAPIXELS", value: (r) => quantity(r.megapixels), align: "right" },
      { header: "CPU HOURS", value: (r) => quantity(r.cpuHours), align: "right" },
      { header: "TOTAL", value: (r) => r.total, align: "right" },
    ])
  );
}
