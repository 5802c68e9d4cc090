import type { DeadLetter, FleetNode, MetricsOverview, SeriesHistory } from "../../../src/contract/admin.js";
import { SERIES } from "../../../src/ops/series.js";
import { get, query } from "../api.js";
import { Badge, Empty, Loaded, PageHeader } from "../components/ui.js";
import { bytes, dateTime, duration } from "../format.js";
import { useResource } from "../hooks.js";
import { href, type Route, setParams } from "../router.js";
import { RANGES, RangePicker, REFRESH_MS, SeriesCard } from "./overview.js";

/** Every node from discovery, then one series per node side by side, outliers marked. */
export function FleetPage({ route }: { route: Route }) {
  const series = route.params.get("series") ?? "latency_p99";
  const range = route.params.get("range") ?? "1h";
  const spanMs = RANGES[range] ?? 3_600_000;
  const fleet = useResource(
    "fleet",
    async (poll) => {
      const [nodes, overview] = await Promise.all([
        get<{ items: FleetNode[] }>("/nodes", { poll }),
        get<MetricsOverview>("/metrics", { poll }),
      ]);
      return { nodes: nodes.items.sort((a, b) => a.id.localeCompare(b.id)), overview };
    },
    REFRESH_MS,
  );
  const nodeIds = fleet.data?.nodes.map((n) => n.id).join(",") ?? "";
  const perNode = useResource(
    `fleet-${series}-${range}-${nodeIds}`,
    (poll) => {
      const since = new Date(Date.now() - spanMs).toISOString();
      return Promise.all(
        (fleet.data?.nodes ?? []).map((n) =>
          get<SeriesHistory>(`/metrics/${series}${query({ node: n.id, since })}`, { poll }),
        ),
      );
    },
    REFRESH_MS,
  );
  const summary = fleet.data?.overview.items.find((s) => s.name === series);

  return (
    <section>
      <PageHeader title="Fleet" />
      <Loaded resource={fleet} what="Loading the fleet">
        {({ nodes }) =>
          nodes.length === 0 ? (
            <Empty>No node has registered in discovery.</Empty>
          ) : (
            <NodeTable nodes={nodes} />
          )
        }
      </Loaded>
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
      {summary ? <p class="sentence">{summary.fleet.sentence}</p> : null}
      <Loaded resource={perNode} what="Loading the series per node">
        {(histories) => (
          <div class="grid nodes">
            {histories.map((h) => {
              const outlier = summary?.nodes.find((n) => n.node === h.node)?.outlier ?? false;
              return (
                <div key={h.node} class={outlier ? "outlier" : ""}>
                  {outlier ? <Badge tone="red">outlier</Badge> : null}
                  <SeriesCard history={h} title={h.node ?? "fleet"} />
                </div>
              );
            })}
          </div>
        )}
      </Loaded>
      <DeadLetters />
    </section>
  );
}

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
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Job</th>
                    <th>Tenant</th>
                    <th>Reason</th>
                    <th class="num">Attempts</th>
                    <th>Worker / staged on</th>
                    <th>Detail</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((d) => (
                    <tr key={d.jobId}>
                      <td>{dateTime(d.at)}</td>
                      <td class="small">
                        <code>{d.jobId}</code>
                      </td>
                      <td>{d.tenant ? <a href={href(`/tenants/${d.tenant}`)}>{d.tenant}</a> : "—"}</td>
                      <td>
                        <Badge tone="red">{d.reason}</Badge>
                      </td>
                      <td class="num">{d.attempts}</td>
                      <td>
                        {d.workerNode} / {d.stagedOn}
                      </td>
                      <td class="small">{d.detail}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
    </>
  );
}

function NodeTable({ nodes }: { nodes: FleetNode[] }) {
  const now = Date.now();
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Node</th>
            <th>Roles</th>
            <th>Version</th>
            <th>Up</th>
            <th>Seen</th>
            <th class="num">In flight</th>
            <th class="num">Queue</th>
            <th class="num">Workers busy</th>
            <th class="num">Memory</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr key={n.id}>
              <td>
                <strong>{n.id}</strong>
                <div class="muted small">{n.url}</div>
              </td>
              <td>{n.roles.join(", ")}</td>
              <td>{n.version}</td>
              <td>{duration(now - n.startedAt)}</td>
              <td>{duration(now - n.seenAt)} ago</td>
              <td class="num">{n.load.inFlight}</td>
              <td class="num">{n.load.queueDepth}</td>
              <td class="num">{n.load.workers ? `${n.load.workersBusy}/${n.load.workers}` : "—"}</td>
              <td class="num">{bytes(n.load.rssBytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
