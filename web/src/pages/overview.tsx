import type { Alert, FleetNode, MetricsOverview, SeriesHistory } from "../../../src/contract/admin.js";
import { get } from "../api.js";
import {
  DEFAULT_RANGE,
  DEFAULT_SAMPLE_INTERVAL_MS,
  loadHistory,
  RangePicker,
  REFRESH_MS,
  SeriesCard,
  type Window,
  windowOf,
} from "../components/series-card.js";
import { Loaded, PageHeader } from "../components/ui.js";
import { type Health, healthOf } from "../health.js";
import { useResource } from "../hooks.js";
import { href, type Route } from "../router.js";

/** The overview's series, in the order a person asks about them. */
export const OVERVIEW_SERIES = [
  "request_rate",
  "error_rate",
  "latency_p50",
  "latency_p99",
  "queue_depth",
  "queue_oldest_age",
] as const;

interface Status {
  overview: MetricsOverview;
  nodes: FleetNode[];
  firing: Alert[];
}

async function loadStatus(poll: boolean): Promise<Status> {
  const [overview, nodes, alerts] = await Promise.all([
    get<MetricsOverview>("/metrics", { poll }),
    get<{ items: FleetNode[] }>("/nodes", { poll }),
    get<{ items: Alert[] }>("/alerts?state=firing", { poll }),
  ]);
  return { overview, nodes: nodes.items, firing: alerts.items };
}

/** Every overview series over one window, so all the cards span the same time. */
async function loadHistories(
  range: string,
  poll: boolean,
): Promise<{ window: Window; items: SeriesHistory[] }> {
  const window = windowOf(range);
  const items = await Promise.all(OVERVIEW_SERIES.map((name) => loadHistory(name, window, poll)));
  return { window, items };
}

export function OverviewPage({ route }: { route: Route }) {
  const range = route.params.get("range") ?? DEFAULT_RANGE;
  const status = useResource("overview-status", loadStatus, REFRESH_MS);
  const histories = useResource(`overview-${range}`, (poll) => loadHistories(range, poll), REFRESH_MS);
  const sampleIntervalMs = status.data?.overview.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
  return (
    <section>
      <PageHeader title="Overview">
        <RangePicker range={range} />
      </PageHeader>
      <Loaded resource={status} what="Loading health">
        {(s) => <HealthPanel health={healthOf({ ...s, now: Date.now() })} />}
      </Loaded>
      <Loaded resource={histories} what="Loading the key series">
        {({ items }) => (
          <div class="grid charts">
            {items.map((h) => (
              <SeriesCard
                key={h.name}
                history={h}
                sampleIntervalMs={sampleIntervalMs}
                summary={status.data?.overview.items.find((s) => s.name === h.name)}
              />
            ))}
          </div>
        )}
      </Loaded>
    </section>
  );
}

function HealthPanel({ health }: { health: Health }) {
  const lines = [...health.reasons, ...health.notes];
  return (
    <div class={`health ${health.tone}`} role="status" data-testid="health">
      <span class="dot" aria-hidden="true" />
      <div>
        <strong data-testid="health-headline">{health.headline}</strong>
        {lines.length > 0 ? (
          <ul>
            {lines.map((r) => (
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
