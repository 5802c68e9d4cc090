import type { DeadLetter, FleetNode, MetricsOverview, SeriesHistory } from "../../../src/contract/admin.js";
import { SERIES } from "../../../src/ops/series.js";
import { get } from "../api.js";
import { type Column, DataTable } from "../components/data-table.js";
import {
  DEFAULT_RANGE,
  DEFAULT_SAMPLE_INTERVAL_MS,
  loadHistory,
  noRecentSample,
  RangePicker,
  REFRESH_MS,
  SeriesCard,
  type Summary,
  windowOf,
} from "../components/series-card.js";
import { Badge, Empty, Loaded, PageHeader } from "../components/ui.js";
import { ago, bytes, dateTime, duration, formatValue } from "../format.js";
import { useResource } from "../hooks.js";
import { href, type Route, setParams } from "../router.js";
import { ageIfStale } from "../series-data.js";

async function loadFleet(poll: boolean): Promise<{ nodes: FleetNode[]; overview: MetricsOverview }> {
  const [nodes, overview] = await Promise.all([
    get<{ items: FleetNode[] }>("/nodes", { poll }),
    get<MetricsOverview>("/metrics", { poll }),
  ]);
  return { nodes: nodes.items.sort((a, b) => a.id.localeCompare(b.id)), overview };
}

/** Every node from discovery, then one series per node side by side, outliers marked. */
export function FleetPage({ route }: { route: Route }) {
  const series = route.params.get("series") ?? "latency_p99";
  const range = route.params.get("range") ?? DEFAULT_RANGE;
  const fleet = useResource("fleet", loadFleet, REFRESH_MS);
  const nodes = fleet.data?.nodes ?? [];
  const perNode = useResource(
    `fleet-${series}-${range}-${nodes.map((n) => n.id).join(",")}`,
    (poll) => {
      const window = windowOf(range);
      return Promise.all(nodes.map((n) => loadHistory(series, window, poll, n.id)));
    },
    REFRESH_MS,
  );
  const summary = fleet.data?.overview.items.find((s) => s.name === series);
  const sampleIntervalMs = fleet.data?.overview.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
  return (
    <section>
      <PageHeader title="Fleet" />
      <Loaded resource={fleet} what="Loading the fleet">
        {(f) =>
          f.nodes.length === 0 ? (
            <Empty>No node has registered in discovery.</Empty>
          ) : (
            <NodeTable nodes={f.nodes} />
          )
        }
      </Loaded>
      <SeriesToolbar series={series} range={range} />
      {summary ? (
        <p class="sentence" data-testid="fleet-sentence">
          {fleetSentence(summary, perNode.data ?? [], sampleIntervalMs)}
        </p>
      ) : null}
      <Loaded resource={perNode} what="Loading the series per node">
        {(histories) => (
          <NodeCharts histories={histories} summary={summary} sampleIntervalMs={sampleIntervalMs} />
        )}
      </Loaded>
      <DeadLetters />
    </section>
  );
}

function SeriesToolbar({ series, range }: { series: string; range: string }) {
  return (
    <div class="toolbar">
      <label for="series-pick">Series</label>
      <select
        id="series-pick"
        value={series}
        onChange={(e) => setParams({ series: (e.target as HTMLSelectElement).value })}
      >
        {Object.entries(SERIES).map(([name, info]) => (
          <option key={name} value={name}>
            {info.title}
          </option>
        ))}
      </select>
      <RangePicker range={range} />
    </div>
  );
}

/**
 * The fleet's value in words, agreeing with the node cards below: without
 * a current fleet value, the newest node value and its age.
 */
export function fleetSentence(
  summary: Summary,
  histories: SeriesHistory[],
  sampleIntervalMs: number,
): string {
  if (summary.fleet.value !== null) return summary.fleet.sentence;
  const lasts = histories.flatMap((h) => {
    const p = h.points.at(-1);
    return p ? [{ node: h.node ?? "fleet", ...p, label: h.label }] : [];
  });
  const newest = lasts.sort((a, b) => Date.parse(b.at) - Date.parse(a.at))[0];
  const label = histories[0]?.label ?? summary.title;
  if (!newest) return `${label}: ${noRecentSample(sampleIntervalMs)}`;
  const age = ageIfStale(newest.at, Date.now(), sampleIntervalMs) ?? ago(newest.at);
  return `${label}: ${noRecentSample(sampleIntervalMs)}; the last, ${formatValue(summary.unit, newest.value)} on ${newest.node}, was ${age}`;
}

function NodeCharts({
  histories,
  summary,
  sampleIntervalMs,
}: {
  histories: SeriesHistory[];
  summary: Summary | undefined;
  sampleIntervalMs: number;
}) {
  return (
    <div class="grid nodes">
      {histories.map((h) => {
        const outlier = summary?.nodes.find((n) => n.node === h.node)?.outlier ?? false;
        return (
          <div key={h.node} class={outlier ? "outlier" : ""}>
            {outlier ? <Badge tone="red">outlier</Badge> : null}
            <SeriesCard history={h} title={h.node ?? "fleet"} sampleIntervalMs={sampleIntervalMs} />
          </div>
        );
      })}
    </div>
  );
}

const DEAD_LETTER_COLUMNS: Column<DeadLetter>[] = [
  { header: "When", cell: (d) => dateTime(d.at) },
  { header: "Job", cell: (d) => <code>{d.jobId}</code>, class: "small" },
  { header: "Tenant", cell: (d) => (d.tenant ? <a href={href(`/tenants/${d.tenant}`)}>{d.tenant}</a> : "—") },
  { header: "Reason", cell: (d) => <Badge tone="red">{d.reason}</Badge> },
  { header: "Attempts", cell: (d) => d.attempts, num: true },
  { header: "Worker / staged on", cell: (d) => `${d.workerNode} / ${d.stagedOn}` },
  { header: "Detail", cell: (d) => d.detail, class: "small" },
];

/** Jobs the queue gave up for good: what an operator looks at when a customer reports a failed image. */
function DeadLetters() {
  const letters = useResource(
    "dead-letters",
    (poll) => get<{ items: DeadLetter[] }>("/dead-letters?limit=50", { poll }),
    REFRESH_MS,
  );
  return (
    <>
      <h2>Dead letters</h2>
      <p class="muted">
        Jobs given up for good: every delivery crashed its worker, or the image could not cross between nodes.
        Their clients were answered with an error. Kept 30 days.
      </p>
      <Loaded resource={letters} what="Loading dead letters">
        {({ items }) =>
          items.length === 0 ? (
            <Empty>No job has been given up.</Empty>
          ) : (
            <DataTable rows={items} columns={DEAD_LETTER_COLUMNS} rowKey={(d) => d.jobId} />
          )
        }
      </Loaded>
    </>
  );
}

function nodeColumns(now: number): Column<FleetNode>[] {
  return [
    {
      header: "Node",
      cell: (n) => (
        <>
          <strong>{n.id}</strong>
          <div class="muted small">{n.url}</div>
        </>
      ),
    },
    { header: "Roles", cell: (n) => n.roles.join(", ") },
    { header: "Version", cell: (n) => n.version },
    { header: "Up", cell: (n) => duration(now - n.startedAt) },
    { header: "Seen", cell: (n) => `${duration(now - n.seenAt)} ago` },
    { header: "In flight", cell: (n) => n.load.inFlight, num: true },
    { header: "Queue", cell: (n) => n.load.queueDepth, num: true },
    {
      header: "Workers busy",
      cell: (n) => (n.load.workers ? `${n.load.workersBusy}/${n.load.workers}` : "—"),
      num: true,
    },
    { header: "Memory", cell: (n) => bytes(n.load.rssBytes), num: true },
  ];
}

function NodeTable({ nodes }: { nodes: FleetNode[] }) {
  return <DataTable rows={nodes} columns={nodeColumns(Date.now())} rowKey={(n) => n.id} />;
}
