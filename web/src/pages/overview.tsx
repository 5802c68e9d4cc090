import { useMemo } from "preact/hooks";
import type { Alert, FleetNode, MetricsOverview, SeriesHistory } from "../../../src/contract/admin.js";
import { get, query } from "../api.js";
import { Chart } from "../components/chart.js";
import { Loaded, PageHeader } from "../components/ui.js";
import { formatValue } from "../format.js";
import { useResource } from "../hooks.js";
import { href, type Route, setParams } from "../router.js";

type Summary = MetricsOverview["items"][number];

/** The overview's series, in the order a person asks about them. */
export const OVERVIEW_SERIES = [
  "request_rate",
  "error_rate",
  "latency_p50",
  "latency_p99",
  "queue_depth",
  "queue_oldest_age",
] as const;

export const RANGES: Record<string, number> = {
  "1h": 3_600_000,
  "6h": 6 * 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
};

/** Automatic refreshes: often enough to see a change, never a burden on the node. */
export const REFRESH_MS = 15_000;

export interface Health {
  tone: "green" | "amber" | "red";
  headline: string;
  reasons: string[];
}

/** Green, amber or red, with the reasons: firing alerts, missing nodes, missing samples. */
export function healthOf(nodes: FleetNode[], firing: Alert[], summaries: Summary[]): Health {
  const reasons: string[] = [];
  let tone: Health["tone"] = "green";
  const worse = (t: Health["tone"]) => {
    if (t === "red" || (t === "amber" && tone === "green")) tone = t;
  };
  if (nodes.length === 0) {
    worse("red");
    reasons.push("no node has registered in discovery");
  }
  const critical = firing.filter((a) => a.severity === "critical");
  for (const a of critical) reasons.push(`critical: ${a.summary}`);
  if (critical.length > 0) worse("red");
  const warnings = firing.filter((a) => a.severity !== "critical");
  for (const a of warnings) reasons.push(`warning: ${a.summary}`);
  if (warnings.length > 0) worse("amber");
  const requests = summaries.find((s) => s.name === "request_rate");
  if (requests && requests.fleet.value === null) {
    worse("amber");
    reasons.push("no recent metric sample: is a control node (metrics-sampler) running?");
  }
  const outliers = summaries.flatMap((s) =>
    s.nodes.filter((n) => n.outlier).map((n) => `${n.node} (${s.title.toLowerCase()})`),
  );
  if (outliers.length > 0) {
    worse("amber");
    reasons.push(`outliers: ${outliers.join(", ")}`);
  }
  const headline =
    tone === "green"
      ? `Healthy: ${nodes.length} node${nodes.length === 1 ? "" : "s"} reporting, no alert firing`
      : tone === "amber"
        ? "Degraded: something needs a look"
        : "Unhealthy: act now";
  return { tone, headline, reasons };
}

export function OverviewPage({ route }: { route: Route }) {
  const range = route.params.get("range") ?? "1h";
  const spanMs = RANGES[range] ?? 3_600_000;
  const status = useResource(
    "overview-status",
    async (poll) => {
      const [overview, nodes, alerts] = await Promise.all([
        get<MetricsOverview>("/metrics", { poll }),
        get<{ items: FleetNode[] }>("/nodes", { poll }),
        get<{ items: Alert[] }>("/alerts?state=firing", { poll }),
      ]);
      return { overview, nodes: nodes.items, firing: alerts.items };
    },
    REFRESH_MS,
  );
  const histories = useResource(
    `overview-${range}`,
    (poll) => {
      const since = new Date(Date.now() - spanMs).toISOString();
      return Promise.all(
        OVERVIEW_SERIES.map((name) => get<SeriesHistory>(`/metrics/${name}${query({ since })}`, { poll })),
      );
    },
    REFRESH_MS,
  );

  return (
    <section>
      <PageHeader title="Overview">
        <RangePicker range={range} />
      </PageHeader>
      <Loaded resource={status} what="Loading health">
        {(s) => <HealthPanel health={healthOf(s.nodes, s.firing, s.overview.items)} />}
      </Loaded>
      <Loaded resource={histories} what="Loading the key series">
        {(list) => (
          <div class="grid charts">
            {list.map((h) => (
              <SeriesCard
                key={h.name}
                history={h}
                summary={status.data?.overview.items.find((s) => s.name === h.name)}
              />
            ))}
          </div>
        )}
      </Loaded>
    </section>
  );
}

export function RangePicker({ range }: { range: string }) {
  return (
    <fieldset class="segmented">
      <legend class="sr-only">Time range</legend>
      {Object.keys(RANGES).map((r) => (
        <button
          type="button"
          key={r}
          aria-pressed={r === range}
          onClick={() => setParams({ range: r === "1h" ? null : r })}
        >
          {r}
        </button>
      ))}
    </fieldset>
  );
}

function HealthPanel({ health }: { health: Health }) {
  return (
    <div class={`health ${health.tone}`} role="status" data-testid="health">
      <span class="dot" aria-hidden="true" />
      <div>
        <strong>{health.headline}</strong>
        {health.reasons.length > 0 ? (
          <ul>
            {health.reasons.map((r) => (
              <li key={r}>{r}</li>
            ))}
          </ul>
        ) : null}
        {health.tone !== "green" ? (
          <p class="small">
            <a href={href("/alerts")}>Open alerts and their runbooks</a>
          </p>
        ) : null}
      </div>
    </div>
  );
}

/** One series: its chart with the baseline band, and the current value in words. */
export function SeriesCard({
  history,
  summary,
  title,
}: {
  history: SeriesHistory;
  summary?: Summary;
  title?: string;
}) {
  const lines = useMemo(
    () => [
      {
        label: history.title,
        x: history.points.map((p) => Date.parse(p.at) / 1000),
        y: history.points.map((p) => p.value),
      },
    ],
    [history],
  );
  const latest = history.points.at(-1)?.value ?? null;
  const sentence = summary?.fleet.sentence ?? sentenceOf(history, latest);
  const outside =
    latest !== null && history.band !== null && (latest > history.band.high || latest < history.band.low);
  return (
    <article class="card series" data-series={history.name}>
      <header>
        <h2>{title ?? history.title}</h2>
        <span class={`value ${outside ? "outside" : ""}`}>
          {latest === null ? "—" : formatValue(history.unit, latest)}
        </span>
      </header>
      <p class="sentence" data-testid={`sentence-${history.name}`}>
        {sentence}
      </p>
      {history.points.length === 0 ? (
        <p class="empty">No samples in this range yet.</p>
      ) : (
        <Chart
          lines={lines}
          unit={history.unit}
          band={history.band}
          label={`${history.title}: ${sentence}`}
        />
      )}
    </article>
  );
}

function sentenceOf(h: SeriesHistory, latest: number | null): string {
  if (latest === null) return `${h.label}: no recent sample`;
  const b = h.baseline;
  return `${h.label} is ${formatValue(h.unit, latest)}; ${b ? `usually ${formatValue(h.unit, b.mean)} ± ${formatValue(h.unit, b.stddev)}` : "no baseline yet"}`;
}
