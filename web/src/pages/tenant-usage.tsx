import { useMemo } from "preact/hooks";
import type { CostEstimate, UsageReport } from "../../../src/contract/usage.js";
import { ADMIN, get, query } from "../api.js";
import { Chart } from "../components/chart.js";
import { type Column, DataTable } from "../components/data-table.js";
import { Empty, Loaded } from "../components/ui.js";
import { bytes, count, money } from "../format.js";
import { useResource } from "../hooks.js";
import { type Route, setParams } from "../router.js";
import { calendarRange, periodAxis, periodMiddle } from "../series-data.js";

type Granularity = "day" | "hour";

/** Usage by day (this month) or by hour (today, UTC), the month's cost estimate, and a CSV export. */
export function TenantUsage({ tenantId, route }: { tenantId: string; route: Route }) {
  const granularity: Granularity = route.params.get("usage") === "hour" ? "hour" : "day";
  const usage = useResource(`usage-${tenantId}-${granularity}`, async () => {
    const [report, cost] = await Promise.all([
      get<UsageReport>(`/usage${query({ tenant: tenantId, granularity })}`),
      get<CostEstimate>(`/usage/cost${query({ tenant: tenantId })}`),
    ]);
    return { report, cost };
  });
  const csv = `${ADMIN}/usage${query({ tenant: tenantId, granularity, format: "csv" })}`;

  return (
    <section class="card" aria-labelledby="usage-title">
      <div class="section-head">
        <h2 id="usage-title">Usage</h2>
        <fieldset class="segmented">
          <legend class="sr-only">Usage granularity</legend>
          <button
            type="button"
            aria-pressed={granularity === "day"}
            onClick={() => setParams({ usage: null })}
          >
            This month by day
          </button>
          <button
            type="button"
            aria-pressed={granularity === "hour"}
            onClick={() => setParams({ usage: "hour" })}
          >
            Today by hour
          </button>
        </fieldset>
        <button type="button" onClick={() => usage.reload()} disabled={usage.loading}>
          Refresh
        </button>
        <a class="button" href={csv} download>
          Export CSV
        </a>
      </div>
      <Loaded resource={usage} what="Loading usage">
        {({ report, cost }) => (
          <>
            <UsageSummary report={report} />
            <UsageChart report={report} />
            <Cost cost={cost} />
          </>
        )}
      </Loaded>
    </section>
  );
}

function UsageSummary({ report }: { report: UsageReport }) {
  if (report.byOutcome) return null;
  const t = report.totals;
  return (
    <dl class="stats" data-testid="usage-totals">
      <div>
        <dt>Requests</dt>
        <dd data-testid="usage-requests">{count(t.requests)}</dd>
      </div>
      <div>
        <dt>Succeeded</dt>
        <dd>{count(t.succeeded)}</dd>
      </div>
      <div>
        <dt>Client errors</dt>
        <dd>{count(t.clientErrors)}</dd>
      </div>
      <div>
        <dt>Server errors</dt>
        <dd>{count(t.serverErrors)}</dd>
      </div>
      <div>
        <dt>Bytes in / out</dt>
        <dd>
          {bytes(t.bytesIn)} / {bytes(t.bytesOut)}
        </dd>
      </div>
      <div>
        <dt>Megapixels in</dt>
        <dd>{(t.pixelsIn / 1e6).toFixed(2)}</dd>
      </div>
    </dl>
  );
}

function UsageChart({ report }: { report: UsageReport }) {
  const chart = useMemo(() => {
    const range = calendarRange(report.from, report.granularity);
    const axis = periodAxis(range, report.granularity);
    const x = report.rows.map((r) => periodMiddle(r.period, axis.periodS));
    return { range, axis, lines: [{ label: "requests", x, y: report.rows.map((r) => r.requests) }] };
  }, [report]);
  if (report.rows.length === 0) return <Empty>No usage recorded in this period yet.</Empty>;
  return (
    <Chart
      lines={chart.lines}
      unit="req"
      xRange={chart.range}
      periods={chart.axis}
      height={180}
      label={`Requests per ${report.granularity}: ${report.rows.length} periods with usage`}
    />
  );
}

type CostLine = CostEstimate["lines"][number];

function costColumns(currency: string): Column<CostLine>[] {
  return [
    { header: "Item", cell: (l) => l.item },
    {
      header: "Quantity",
      cell: (l) => `${count(Math.round(l.quantity * 10_000) / 10_000)} × ${l.unit}`,
      num: true,
    },
    { header: "Unit price", cell: (l) => money(l.unitPrice, currency), num: true },
    { header: "Amount", cell: (l) => money(l.amount, currency), num: true },
  ];
}

function Cost({ cost }: { cost: CostEstimate }) {
  return (
    <div class="cost" data-testid="cost">
      <h3>
        Cost estimate for {cost.month}
        {cost.partial ? " (so far this month)" : ""}:{" "}
        <span class="total">{money(cost.total, cost.currency)}</span>
      </h3>
      <DataTable rows={cost.lines} columns={costColumns(cost.currency)} rowKey={(l) => l.item} />
    </div>
  );
}
