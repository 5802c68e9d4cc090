import type { Logger } from "pino";
import { mapLimit } from "../util/map-limit.js";
import { fleetValues, type NodeWindow, nodeValues, type Scrape, windowOf } from "./derive-series.js";
import type { HistorySettings, HistoryStore } from "./history-store.js";
import { parsePrometheusText } from "./prometheus-text.js";
import { FLEET_NODE, type MetricPoint, type SeriesName } from "./series.js";

/** A node answering /metrics slower than this is recorded as failed for the round (a gap, not a stall). */
export const SCRAPE_TIMEOUT_MS = 2000;
/** Scrapes in flight at once: a 200-node fleet takes ~50 round trips of the control node's time, not 200. */
const SCRAPE_CONCURRENCY = 4;
/** A node's /metrics is ~30 KB; anything far larger is not ours and is refused rather than parsed. */
const MAX_EXPOSITION_BYTES = 4 * 2 ** 20;
const COMPACT_EVERY_MS = 3_600_000;
/**
 * Until a round has written points (at start the node may not be listening
 * or registered yet), rounds run this often instead of every interval.
 */
const FIRST_SAMPLE_RETRY_MS = 1000;
/** A node not answering for this long is forgotten (its last-scrape entry too). */
const FORGET_AFTER_MS = 24 * 3_600_000;

/** Where a node is, as discovery lists it. */
export interface SampledNode {
  id: string;
  url: string;
}

export interface SamplerOptions {
  /** The live nodes (discovery.list()); nodes without a URL yet are skipped. */
  nodes: () => Promise<SampledNode[]>;
  history: HistoryStore;
  settings: Pick<HistorySettings, "sampleIntervalMs" | "maxNodes">;
  logger: Logger;
  clock?: () => number;
}

/**
 * Samples the key series of every live node every `sampleIntervalMs`: it
 * scrapes each node's /metrics, derives the series from this scrape and the
 * previous one of the same node (rates and percentiles need two), and writes
 * one point per series and node plus the fleet-wide value, with `at` = the
 * scrape's time. A value that cannot be computed (first scrape, no traffic
 * for a percentile) is left out rather than written as zero. Compacts the
 * history hourly. Runs on one control node at a time (the metrics-sampler
 * singleton); a new holder starts with no previous scrapes, so its first
 * round yields gauges only.
 */
export class Sampler {
  readonly #previous = new Map<string, Scrape>();
  readonly #lastScrape = new Map<string, number>();
  readonly #failures = new Map<string, { at: number; error: string }>();
  readonly #clock: () => number;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<unknown> | null = null;
  #running = false;
  #lastCompactAt = Number.NEGATIVE_INFINITY;
  #warnedCap = false;
  #sampledOnce = false;

  constructor(private readonly options: SamplerOptions) {
    this.#clock = options.clock ?? Date.now;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    // The first round at once: a node that just started (or took over the lease) shows its
    // gauges right away and its rates one interval later, instead of nothing for two intervals.
    this.#schedule(0);
  }

  /** Stops sampling; resolves once a round in progress has written its points. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#round?.catch(() => {});
  }

  /** When each node last answered /metrics (epoch ms), for "node not reporting" checks. */
  lastScrape(): Map<string, number> {
    return new Map(this.#lastScrape);
  }

  /** Nodes whose latest scrape failed, with when and why. */
  failures(): Map<string, { at: number; error: string }> {
    return new Map(this.#failures);
  }

  /** One sampling round now (the timer calls it; tests too). Resolves with the points written. */
  async sample(): Promise<MetricPoint[]> {
    const startedAt = this.#clock();
    const nodes = await this.#targets();
    const scrapes = await mapLimit(nodes, SCRAPE_CONCURRENCY, (n) => this.#scrape(n));
    const windows: NodeWindow[] = [];
    for (const scrape of scrapes) {
      if (!scrape) continue;
      windows.push(windowOf(scrape, this.#previous.get(scrape.node)));
      this.#previous.set(scrape.node, scrape);
    }
    const points = windows.flatMap((w) => pointsOf(w.node, w.at, nodeValues(w)));
    if (windows.length > 0) points.push(...pointsOf(FLEET_NODE, startedAt, fleetValues(windows)));
    this.#forget(new Set(nodes.map((n) => n.id)), startedAt);
    await this.options.history.write(points);
    if (points.length > 0) this.#sampledOnce = true;
    if (startedAt - this.#lastCompactAt >= COMPACT_EVERY_MS) {
      this.#lastCompactAt = startedAt;
      const removed = await this.options.history.compact(startedAt);
      this.options.logger.debug({ removed }, "metric history compacted");
    }
    return points;
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      const began = this.#clock();
      this.#round = this.sample()
        .catch((error: unknown) =>
          this.options.logger.warn(
            { err: error },
            "a metric sampling round failed (database unavailable?); this round is a gap in the history, the next one retries",
          ),
        )
        .finally(() => {
          this.#round = null;
          const elapsed = this.#clock() - began;
          const { sampleIntervalMs } = this.options.settings;
          const next = this.#sampledOnce
            ? sampleIntervalMs
            : Math.min(sampleIntervalMs, FIRST_SAMPLE_RETRY_MS);
          this.#schedule(Math.max(0, next - elapsed));
        });
    }, delayMs);
    this.#timer.unref();
  }

  async #targets(): Promise<SampledNode[]> {
    const live = (await this.options.nodes()).filter((n) => n.url !== "");
    const { maxNodes } = this.options.settings;
    if (live.length > maxNodes && !this.#warnedCap) {
      this.#warnedCap = true;
      this.options.logger.warn(
        { nodes: live.length, maxNodes },
        `the fleet has ${live.length} nodes; only ${maxNodes} are sampled (ops.maxNodes bounds the history's size): raise ops.maxNodes to see them all`,
      );
    }
    return live.slice(0, maxNodes);
  }

  async #scrape(node: SampledNode): Promise<Scrape | null> {
    const at = this.#clock();
    try {
      const response = await fetch(`${node.url.replace(/\/+$/, "")}/metrics`, {
        signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS),
        headers: { accept: "text/plain", "user-agent": "imgfleet-sampler" },
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`HTTP ${response.status} from /metrics`);
      if (text.length > MAX_EXPOSITION_BYTES) throw new Error(`/metrics is ${text.length} bytes, too large`);
      this.#lastScrape.set(node.id, this.#clock());
      if (this.#failures.delete(node.id)) {
        this.options.logger.info({ node: node.id }, `node ${node.id} answers /metrics again`);
      }
      return { node: node.id, at, exposition: parsePrometheusText(text) };
    } catch (error) {
      const reason = error instanceof Error && error.name === "TimeoutError" ? "timed out" : String(error);
      if (!this.#failures.has(node.id)) {
        this.options.logger.warn(
          { node: node.id, url: node.url, reason },
          `could not scrape node ${node.id} at ${node.url}/metrics (${reason}); its series have a gap until it answers`,
        );
      }
      this.#failures.set(node.id, { at, error: reason });
      return null;
    }
  }

  /** Drops state of nodes that left: previous scrapes at once, last-scrape times after a day. */
  #forget(live: Set<string>, now: number): void {
    for (const id of this.#previous.keys()) if (!live.has(id)) this.#previous.delete(id);
    for (const [id, at] of this.#lastScrape)
      if (!live.has(id) && now - at > FORGET_AFTER_MS) this.#lastScrape.delete(id);
    for (const id of this.#failures.keys()) if (!live.has(id)) this.#failures.delete(id);
  }
}

function pointsOf(node: string, at: number, values: Partial<Record<SeriesName, number>>): MetricPoint[] {
  return Object.entries(values).map(([series, value]) => ({ series: series as SeriesName, node, at, value }));
}
