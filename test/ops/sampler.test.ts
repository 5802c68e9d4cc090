import { once } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { fleetValues, nodeValues, quantile, windowOf } from "../../src/ops/derive-series.js";
import type { HistoryStore } from "../../src/ops/history-store.js";
import { outliers, sentence } from "../../src/ops/metric-summary.js";
import { parsePrometheusText } from "../../src/ops/prometheus-text.js";
import { FLEET_NODE, type MetricPoint, type SeriesName } from "../../src/ops/series.js";
import { formatBand, formatValue, sparkline } from "../../src/ops/units.js";
import { ok, type CliRun as Run, runAgainst } from "../helpers/cli.js";
import { slowJob, solidImage } from "../helpers/images.js";
import { poolOf, type RunningNode, startNode } from "../helpers/node.js";

const HOUR = 3_600_000;
/** Seeding to the last CLI call takes well under this, even on a busy machine. */
const HOUR_MARGIN_MS = 60_000;
/** The request-latency buckets of src/metrics/metrics.ts, in ms. */
const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 75, 100, 150, 250, 500, 750, 1000, 2500, 5000, 10_000, 30_000];

/** A minimal exposition as a node writes it: resize counts by status, latency buckets, gauges. */
function exposition(o: {
  ok: number;
  errors: number;
  fast: number;
  cpu: number;
  start?: number;
  busy?: number;
  queue?: number;
  disk?: number;
}): string {
  const total = o.ok + o.errors;
  const route = 'route="/v1/resize",method="POST"';
  return [
    `imgfleet_http_request_duration_seconds_bucket{le="0.01",${route},status="200"} ${o.fast}`,
    `imgfleet_http_request_duration_seconds_bucket{le="0.1",${route},status="200"} ${o.ok}`,
    `imgfleet_http_request_duration_seconds_bucket{le="+Inf",${route},status="200"} ${o.ok}`,
    `imgfleet_http_request_duration_seconds_count{${route},status="200"} ${o.ok}`,
    `imgfleet_http_request_duration_seconds_bucket{le="0.01",${route},status="503"} ${o.errors}`,
    `imgfleet_http_request_duration_seconds_bucket{le="0.1",${route},status="503"} ${o.errors}`,
    `imgfleet_http_request_duration_seconds_bucket{le="+Inf",${route},status="503"} ${o.errors}`,
    `imgfleet_http_request_duration_seconds_count{${route},status="503"} ${o.errors}`,
    // Another route never counts.
    `imgfleet_http_request_duration_seconds_count{route="/metrics",method="GET",status="200"} ${total * 7}`,
    `imgfleet_rejections_total{reason="overloaded"} ${o.errors}`,
    `imgfleet_process_process_cpu_seconds_total ${o.cpu}`,
    `imgfleet_process_process_start_time_seconds ${o.start ?? 1000}`,
    `imgfleet_process_process_resident_memory_bytes ${200 * 2 ** 20}`,
    "imgfleet_process_nodejs_eventloop_lag_p99_seconds 0.012",
    `imgfleet_queue_depth ${o.queue ?? 0}`,
    "imgfleet_queue_oldest_age_seconds 0",
    `imgfleet_workers{state="busy"} ${o.busy ?? 1}`,
    `imgfleet_workers{state="idle"} ${4 - (o.busy ?? 1)}`,
    "imgfleet_usage_spool_bytes 4096",
    "imgfleet_usage_oldest_uncommitted_batch_age_seconds 0",
    `imgfleet_disk_free_bytes ${o.disk ?? 10 * 2 ** 30}`,
  ].join("\n");
}

function scrape(node: string, at: number, text: string) {
  return { node, at, exposition: parsePrometheusText(text) };
}

/** The CLI pointed at the node; a generous bound, as the suite runs beside a sampling node. */
const cli = (n: RunningNode, ...args: string[]): Promise<Run> => runAgainst(n, args, 60_000);

describe("deriving series from two scrapes", () => {
  it("interpolates percentiles within the bucket, as histogram_quantile does", () => {
    const buckets = [
      { le: 0.1, count: 0 },
      { le: 0.2, count: 10 },
      { le: Number.POSITIVE_INFINITY, count: 10 },
    ];
    expect(quantile(0.5, buckets)).toBeCloseTo(0.15, 12);
    expect(quantile(0.99, buckets)).toBeCloseTo(0.199, 12);
    // Beyond the last finite bound: that bound.
    expect(
      quantile(0.99, [
        { le: 1, count: 1 },
        { le: Number.POSITIVE_INFINITY, count: 100 },
      ]),
    ).toBe(1);
    expect(quantile(0.5, [{ le: Number.POSITIVE_INFINITY, count: 0 }])).toBeUndefined();
  });

  it("gives gauges on the first scrape, rates and percentiles from the second, nothing across a restart", () => {
    const t = 1_000_000;
    const first = scrape("api-1", t, exposition({ ok: 10, errors: 0, fast: 10, cpu: 5 }));
    const w1 = windowOf(first, undefined);
    const v1 = nodeValues(w1);
    expect(v1.request_rate).toBeUndefined();
    expect(v1.latency_p50).toBeUndefined();
    expect(v1).toMatchObject({ queue_depth: 0, memory: 200 * 2 ** 20, disk_free: 10 * 2 ** 30 });
    expect(v1.event_loop_delay).toBeCloseTo(12, 9);
    expect(v1.worker_utilisation).toBe(0.25);

    // 10 s later: 40 more OK (20 of them ≤ 10 ms), 10 answered 503, 2 CPU-seconds.
    const second = scrape("api-1", t + 10_000, exposition({ ok: 50, errors: 10, fast: 30, cpu: 7 }));
    const v2 = nodeValues(windowOf(second, first));
    expect(v2.request_rate).toBeCloseTo(5, 12);
    expect(v2.error_rate).toBeCloseTo(10 / 50, 12);
    expect(v2.rejection_rate).toBeCloseTo(1, 12);
    expect(v2.cpu).toBeCloseTo(0.2, 12);
    // Of 50 requests, 30 (20 OK + 10 errors) ≤ 10 ms: the median is in the first bucket, at 25/30 of it.
    expect(v2.latency_p50).toBeCloseTo((10 * 25) / 30, 9);
    // The 99th is the 49.5th of 50, in (10, 100] ms: 19.5 of its 20.
    expect(v2.latency_p99).toBeCloseTo(10 + (90 * 19.5) / 20, 9);
    expect(v2.aggregation_lag).toBeUndefined();

    // Nothing happened: rates are zero, the error rate is 0, percentiles are skipped (not zero).
    const idle = scrape("api-1", t + 20_000, exposition({ ok: 50, errors: 10, fast: 30, cpu: 7 }));
    const v3 = nodeValues(windowOf(idle, second));
    expect(v3).toMatchObject({ request_rate: 0, error_rate: 0, rejection_rate: 0, cpu: 0 });
    expect(v3.latency_p50).toBeUndefined();

    // A restarted process (new start time, counters back to zero) starts over.
    const restarted = scrape(
      "api-1",
      t + 30_000,
      exposition({ ok: 1, errors: 0, fast: 1, cpu: 0.1, start: 2000 }),
    );
    expect(windowOf(restarted, idle).activity).toBeNull();
  });

  it("forms fleet values from summed counts and merged buckets, gauges by their aggregate", () => {
    const t = 1_000_000;
    const before = [
      scrape("a", t, exposition({ ok: 0, errors: 0, fast: 0, cpu: 1 })),
      scrape("b", t, exposition({ ok: 0, errors: 0, fast: 0, cpu: 1 })),
    ];
    const after = [
      scrape("a", t + 10_000, exposition({ ok: 90, errors: 10, fast: 0, cpu: 2, queue: 3, disk: 5e9 })),
      scrape(
        "b",
        t + 10_000,
        exposition({ ok: 10, errors: 0, fast: 10, cpu: 4, queue: 3, busy: 3, disk: 7e9 }),
      ),
    ];
    const windows = after.map((s, i) => windowOf(s, before[i]));
    const fleet = fleetValues(windows);
    expect(fleet.request_rate).toBeCloseTo(11, 12);
    // 10 errors of 110 requests, not the mean of 10% and 0%.
    expect(fleet.error_rate).toBeCloseTo(10 / 110, 12);
    expect(fleet.cpu).toBeCloseTo(0.4, 12);
    // The queue is shared (max), free disk is the fullest node's (min), utilisation from summed workers.
    expect(fleet).toMatchObject({ queue_depth: 3, disk_free: 5e9, worker_utilisation: 4 / 8 });
    // 20 of 110 ≤ 10 ms: the merged median lies in (10, 100] ms, at (55 − 20) / 90 of it.
    expect(fleet.latency_p50).toBeCloseTo(10 + (90 * 35) / 90, 9);
  });
});

describe("summaries", () => {
  const baseline = { mean: 80, stddev: 20, samples: 400, basis: "window" as const };

  it("writes the sentence in plain units", () => {
    expect(sentence("latency_p99", 340, baseline, [{ node: "api-2", value: 900 }])).toBe(
      "p99 latency is 340 ms; usually 80 ± 20 ms; api-2 is the outlier at 900 ms",
    );
    expect(sentence("error_rate", 0.025, null)).toBe("error rate is 2.5%; no baseline yet");
    expect(sentence("memory", null, null)).toBe("memory: no recent sample");
    expect(formatValue("bytes", 480 * 2 ** 20)).toBe("480 MB");
    expect(formatValue("bytes", 12.34 * 2 ** 30)).toBe("12.3 GB");
    expect(formatBand("bytes", 480 * 2 ** 20, 12 * 2 ** 20)).toBe("480 ± 12 MB");
    expect(formatValue("s", 312)).toBe("5.2 min");
    expect(formatValue("req/s", 0.35)).toBe("0.35 req/s");
    expect(sparkline([1, 2, 3, 4, 5, 6, 7, 8])).toBe("▁▂▃▄▅▆▇█");
    expect(sparkline([5, 5, 5])).toBe("▁▁▁");
  });

  it("flags the node far from the others, never both of two nodes that merely differ", () => {
    const at = (values: number[], b: typeof baseline | null = null) =>
      [...outliers(values.map((value) => ({ value, baseline: b })))].sort();
    expect(at([80, 900, 85])).toEqual([1]);
    expect(at([80, 84, 78, 83])).toEqual([]);
    expect(at([0, 0, 0.2])).toEqual([2]);
    expect(at([80])).toEqual([]);
    // Two nodes that differ flag each other; only the one outside its usual band remains.
    expect([
      ...outliers([
        { value: 80, baseline },
        { value: 400, baseline },
      ]),
    ]).toEqual([1]);
    expect(at([80, 400])).toEqual([]);
  });
});

async function pointsSince(history: HistoryStore, series: SeriesName, node: string, since: number) {
  return history.points(series, { node, since });
}

/** Bucket bounds (ms) around a latency: the histogram cannot place it more precisely. */
function bucketRange(ms: number): [number, number] {
  const upper = LATENCY_BUCKETS_MS.find((b) => b >= ms) ?? Number.POSITIVE_INFINITY;
  const lower = [...LATENCY_BUCKETS_MS].reverse().find((b) => b < ms) ?? 0;
  return [lower, upper];
}

describe("the sampler on a real node", () => {
  it("samples the node's series into the history, serves them with baselines, and the CLI shows them", {
    timeout: 150_000,
  }, async () => {
    const n = await startNode({ ops: { sampleIntervalMs: 1000 }, queue: { capacity: 1 } });
    const { history, sampler } = n.node.ops;
    if (!sampler) throw new Error("an embedded node has the control role: it should sample");
    const self = n.node.adapters.nodeId;
    await vi.waitFor(() => expect(sampler.lastScrape().get(self)).toBeDefined(), {
      timeout: 15_000,
      interval: 100,
    });

    // Phase 1: successful resizes only, their Server-Timing totals noted.
    const started = Date.now();
    const totals: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await n.post("/v1/resize?w=30", await solidImage(60, 40));
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      totals.push(Number(/total;dur=([\d.]+)/.exec(res.headers.get("server-timing") ?? "")?.[1]));
    }
    const phase1End = Date.now();
    // Wait for a round that began after the last of them.
    await vi.waitFor(
      async () => {
        const p50 = await pointsSince(history, "latency_p50", self, started);
        const rounds = await pointsSince(history, "memory", self, phase1End);
        expect(p50.length).toBeGreaterThan(0);
        expect(rounds.length).toBeGreaterThan(0);
      },
      { timeout: 20_000, interval: 100 },
    );
    const [low] = bucketRange(Math.min(...totals));
    // The histogram observes when the response is written, a little after Server-Timing's total.
    const [, high] = bucketRange(Math.max(...totals) * 1.5 + 5);
    const p50s = await pointsSince(history, "latency_p50", self, started);
    const p99s = await pointsSince(history, "latency_p99", self, started);
    for (const p of [...p50s, ...p99s]) {
      expect(
        p.value,
        `latency ${p.value} ms vs Server-Timing totals ${totals.join(", ")}`,
      ).toBeGreaterThanOrEqual(low * 0.999);
      expect(p.value).toBeLessThanOrEqual(high);
    }
    const rates = await pointsSince(history, "request_rate", self, started);
    expect(Math.max(...rates.map((p) => p.value))).toBeGreaterThan(0);

    // Phase 2: a 400, then a full queue: a slow job runs, the next waits in the worker, one fills the queue.
    const phase2 = Date.now();
    const bad = await n.post("/v1/resize?w=abc", await solidImage(60, 40));
    expect(bad.status).toBe(400);
    const slow = await slowJob();
    const busy = once(poolOf(n.node), "job-start");
    const running = n.post(`/v1/resize?${slow.query}`, slow.body);
    await busy;
    const small = await solidImage(60, 40);
    const burst = await Promise.all(
      Array.from({ length: 4 }, () =>
        n.post("/v1/resize?w=10", small).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ),
    );
    expect(burst).toContain(503);
    expect((await running).status).toBe(200);
    await vi.waitFor(
      async () => {
        const errors = await pointsSince(history, "error_rate", self, phase2);
        expect(Math.max(0, ...errors.map((p) => p.value))).toBeGreaterThan(0);
      },
      { timeout: 20_000, interval: 100 },
    );
    const rejections = await pointsSince(history, "rejection_rate", self, phase2);
    expect(Math.max(...rejections.map((p) => p.value))).toBeGreaterThan(0);

    // Gauges and process figures of every round.
    for (const [series, check] of [
      ["queue_depth", (v: number) => v >= 0 && v <= 1],
      ["memory", (v: number) => v > 50 * 2 ** 20],
      ["disk_free", (v: number) => v > 0],
      ["event_loop_delay", (v: number) => v > 0],
      ["cpu", (v: number) => v >= 0],
      ["worker_utilisation", (v: number) => v >= 0 && v <= 1],
      ["spool_bytes", (v: number) => v >= 0],
    ] as const) {
      const points = await pointsSince(history, series, self, started);
      expect(points.length, series).toBeGreaterThan(0);
      expect(
        points.every((p) => check(p.value)),
        `${series}: ${points.map((p) => p.value).join(", ")}`,
      ).toBe(true);
    }
    // One node: the fleet-wide value of a round is the node's.
    const latest = await history.latest("memory", 10_000);
    expect(latest.get(FLEET_NODE)?.value).toBe(latest.get(self)?.value);
    expect(sampler.failures().size).toBe(0);

    // From here on the test writes the history itself.
    await sampler.stop();
    await seededBaselineChecks(n, history, self);
    await cliChecks(n);
  });
});

/**
 * Eight hours of latency_p99 history (60 and 100 ms alternating: 80 ± 20) for
 * three made-up nodes and the fleet, then a current value for each: the
 * admin API puts the fleet's 340 ms against its baseline and names api-2.
 */
async function seededBaselineChecks(n: RunningNode, history: HistoryStore, self: string): Promise<void> {
  // The "current" points must stay in the current hour (out of the baseline) until the CLI has run:
  // close to the top of an hour, wait for the next one to begin (bounded; about 2% of runs).
  await vi.waitFor(() => expect(HOUR - (Date.now() % HOUR)).toBeGreaterThan(HOUR_MARGIN_MS), {
    timeout: HOUR_MARGIN_MS + 5000,
    interval: 250,
  });
  const now = Date.now();
  const hour = Math.floor(now / HOUR) * HOUR;
  const seeded: MetricPoint[] = [];
  for (let h = 8; h >= 1; h--) {
    for (let i = 0; i < 4; i++) {
      const at = hour - h * HOUR + i * 15 * 60_000;
      for (const node of ["api-1", "api-2", "api-3", FLEET_NODE]) {
        seeded.push({ series: "latency_p99", node, at, value: i % 2 === 0 ? 60 : 100 });
      }
    }
  }
  // The node under test sampled its own p99 too (from its first round at start): give it a current
  // value like the healthy nodes', so the outlier is decided among four nodes that are all seeded.
  const current = { "api-1": 80, "api-2": 900, "api-3": 85, [self]: 82, [FLEET_NODE]: 340 };
  for (const [node, value] of Object.entries(current))
    seeded.push({ series: "latency_p99", node, at: now, value });
  await history.write(seeded);

  const res = await n.admin("GET", "/metrics");
  expect(res.status).toBe(200);
  const body = (await res.json()) as {
    items: {
      name: string;
      unit: string;
      fleet: { value: number; baseline: { mean: number; stddev: number } | null; sentence: string };
      nodes: { node: string; value: number; outlier: boolean; baseline: unknown }[];
    }[];
  };
  expect(body.items.map((s) => s.name)).toContain("disk_free");
  const p99 = body.items.find((s) => s.name === "latency_p99");
  // The sampler's own points may fall in the previous hour too, moving the baseline a little.
  expect(p99?.fleet.sentence).toMatch(
    /^p99 latency is 340 ms; usually \d+ ± \d+ ms; api-2 is the outlier at 900 ms$/,
  );
  expect(p99?.fleet.baseline?.mean).toBeGreaterThan(70);
  expect(p99?.fleet.baseline?.mean).toBeLessThanOrEqual(80);
  expect(p99?.nodes.filter((x) => x.outlier).map((x) => x.node)).toEqual(["api-2"]);
  expect(p99?.nodes.find((x) => x.node === "api-1")?.baseline).toEqual({
    mean: 80,
    stddev: 20,
    samples: 32,
    basis: "window",
  });

  const since = new Date(now - 9 * HOUR).toISOString();
  const one = await n.admin("GET", `/metrics/latency_p99?node=api-2&since=${encodeURIComponent(since)}`);
  expect(one.status).toBe(200);
  const series = (await one.json()) as { points: { value: number; resolution: string }[]; band: unknown };
  expect(series.band).toEqual({ low: 60, high: 100 });
  expect(series.points.length).toBe(33);
  expect(series.points.at(-1)).toMatchObject({ value: 900, resolution: "raw" });

  const unknown = await n.admin("GET", "/metrics/latency_p42");
  expect(unknown.status).toBe(404);
  expect(((await unknown.json()) as { detail: string }).detail).toContain("latency_p99");
  const invalid = await n.admin("GET", "/metrics/latency_p99?since=yesterday");
  expect(invalid.status).toBe(400);
  expect(((await invalid.json()) as { type: string }).type).toBe("/problems/invalid-body");
}

async function cliChecks(n: RunningNode): Promise<void> {
  const [table, one, status, statusJson] = await Promise.all([
    cli(n, "metrics"),
    cli(n, "metrics", "latency_p99", "--node", "api-2", "--since", "9h"),
    cli(n, "status"),
    cli(n, "status", "--json"),
  ]);
  const all = ok(table);
  expect(all).toMatch(/^SERIES +VALUE +USUALLY +NODES +SUMMARY$/m);
  expect(all).toMatch(
    /^latency_p99 +340 ms +\d+ ± \d+ ms +\d+ +p99 latency is 340 ms; usually .*api-2 is the outlier/m,
  );
  expect(all).toMatch(/^disk_free +[\d.]+ [KMG]B /m);

  const history = ok(one);
  expect(history).toContain("latency_p99 (Resize latency, 99th percentile), api-2");
  expect(history).toContain("usually 80 ± 20 ms (over the baseline window, 32 samples)");
  expect(history).toMatch(/^[▁▂▃▄▅▆▇█]+ {2}min 60 ms, max 900 ms$/m);
  expect(history).toMatch(/ 900 ms {2}sample$/m);

  const text = ok(status);
  expect(text.split("\n")[0]).toMatch(/^(healthy|degraded: .+)$/);
  expect(text).toMatch(/^NODE +ROLES +READY/m);
  expect(text).toMatch(new RegExp(`^${n.node.adapters.nodeId} +api,worker,control +yes`, "m"));
  expect(text).toContain("KEY SERIES");
  const parsed = JSON.parse(ok(statusJson)) as {
    healthy: boolean;
    reasons: string[];
    nodes: { ready: boolean }[];
  };
  expect(parsed.nodes).toHaveLength(1);
  expect(parsed.nodes[0]?.ready).toBe(true);
  expect(parsed.healthy).toBe(parsed.reasons.length === 0);
}
