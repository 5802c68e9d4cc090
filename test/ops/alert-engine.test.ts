import { pino } from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { RawConfig } from "../../src/config/sources.js";
import { migrate } from "../../src/db/migrate.js";
import { PgliteDatabase } from "../../src/db/pglite-database.js";
import { AlertStore } from "../../src/ops/alerts/alert-store.js";
import { AlertEngine, type FleetFacts } from "../../src/ops/alerts/engine.js";
import type { Alert, Finding } from "../../src/ops/alerts/model.js";
import type { Rule } from "../../src/ops/alerts/rule.js";
import { BUILTIN_RULES } from "../../src/ops/alerts/rules.js";
import { EventLog } from "../../src/ops/events.js";
import { HistoryStore } from "../../src/ops/history-store.js";
import type { MetricPoint, SeriesName } from "../../src/ops/series.js";

/**
 * The engine's lifecycle (fire, de-duplicate, refresh, resolve without
 * flapping, acknowledge) and the built-in rules on synthetic history, on a
 * real PGlite with a fake clock.
 */

const T0 = Date.parse("2026-03-10T12:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const STEP = 15_000;

function rule(id: string, findings: () => Finding[] | Promise<Finding[]>): Rule {
  return {
    id,
    severity: "warning",
    condition: "test",
    runbook: "do the thing",
    evaluate: async () => findings(),
  };
}

function found(subject: string, summary = `trouble on ${subject}`): Finding {
  return {
    rule: "test-rule",
    subject,
    severity: "warning",
    summary,
    runbook: "do the thing",
    figures: { n: 1 },
  };
}

async function setup(options: { rules?: Rule[]; fleet?: Partial<FleetFacts>; config?: RawConfig } = {}) {
  const config = loadConfig({ env: {}, overrides: options.config ?? {} });
  const db = await PgliteDatabase.open("memory://engine");
  onTestFinished(() => db.close());
  await migrate(db);
  const clock = { now: T0 };
  const history = new HistoryStore(db, config.ops, () => clock.now);
  const notified: { type: string; alert: Alert }[] = [];
  const events = new EventLog(db, "control-1");
  const make = () =>
    new AlertEngine({
      store: new AlertStore(db),
      rules: options.rules ?? BUILTIN_RULES,
      history,
      fleet: {
        nodes: async () => [],
        lastScrape: () => new Map(),
        leaseHolder: async () => "control-1",
        ...options.fleet,
      },
      settings: config.ops.alerts,
      sampleIntervalMs: config.ops.sampleIntervalMs,
      spoolMaxBytes: config.usage.spool.maxBytes,
      events,
      notify: (type, alert) => notified.push({ type, alert }),
      logger: pino({ level: "silent" }),
      clock: () => clock.now,
    });
  return { db, history, clock, notified, events, engine: make(), make, store: new AlertStore(db) };
}

/** Samples every 15 s of `series` on `node` from `from` to `to` (inclusive). */
function samples(series: SeriesName, node: string, from: number, to: number, value: (at: number) => number) {
  const points: MetricPoint[] = [];
  for (let at = from; at <= to; at += STEP) points.push({ series, node, at, value: value(at) });
  return points;
}

describe("alert lifecycle", () => {
  it("opens one alert per key, refreshes its figures, and resolves only after two clean evaluations", async () => {
    let current: Finding[] = [found("a")];
    const { engine, notified, store, clock, events } = await setup({
      rules: [rule("test-rule", () => current)],
    });

    const first = await engine.evaluate();
    expect(first.fired.map((a) => a.key)).toEqual(["test-rule:a"]);
    clock.now += STEP;
    current = [found("a", "worse on a")];
    expect((await engine.evaluate()).fired).toEqual([]);
    const [open] = await store.firing();
    expect(open?.summary).toBe("worse on a");
    expect(open?.updatedAt).toBe(new Date(T0 + STEP).toISOString());

    // False once, true again, false once: never two in a row, so it stays open (no flapping).
    current = [];
    expect((await engine.evaluate()).resolved).toEqual([]);
    current = [found("a")];
    await engine.evaluate();
    current = [];
    expect((await engine.evaluate()).resolved).toEqual([]);
    clock.now += STEP;
    const { resolved } = await engine.evaluate();
    expect(resolved.map((a) => [a.key, a.state, a.resolvedAt])).toEqual([
      ["test-rule:a", "resolved", new Date(T0 + 2 * STEP).toISOString()],
    ]);
    expect(notified.map((n) => n.type)).toEqual(["alert.fired", "alert.resolved"]);
    const kinds = (await events.list({ limit: 10, kind: "alert" })).map((e) => e.kind);
    expect(kinds).toEqual(["alert.resolved", "alert.fired"]);

    // The next episode is a new alert.
    current = [found("a")];
    const again = await engine.evaluate();
    expect(again.fired).toHaveLength(1);
    expect(again.fired[0]?.id).not.toBe(first.fired[0]?.id);
  });

  it("de-duplicates two evaluators racing (a lease hand-over mid-cycle): one firing alert, one notification", async () => {
    const { make, notified, store } = await setup({ rules: [rule("test-rule", () => [found("a")])] });
    await Promise.all([make().evaluate(), make().evaluate(), make().evaluate()]);
    expect(await store.firing()).toHaveLength(1);
    expect(notified).toHaveLength(1);
  });

  it("leaves the alerts of a rule that failed as they are", async () => {
    let fail = false;
    const { engine, store } = await setup({
      rules: [
        rule("test-rule", () => {
          if (fail) throw new Error("database unavailable");
          return [found("a")];
        }),
      ],
    });
    await engine.evaluate();
    fail = true;
    for (let i = 0; i < 3; i++) expect((await engine.evaluate()).failedRules).toEqual(["test-rule"]);
    expect(await store.firing()).toHaveLength(1);
  });

  it("acknowledges with who and when, in the audit trail, keeping the first acknowledgement", async () => {
    const { engine, store, db } = await setup({ rules: [rule("test-rule", () => [found("a")])] });
    const [alert] = (await engine.evaluate()).fired;
    const actor = { id: "key_1", ip: "127.0.0.1", requestId: "r1" };
    const acked = await store.ack(alert?.id ?? "", actor);
    expect(acked.ackedBy).toBe("key_1");
    expect(acked.ackedAt).not.toBeNull();
    const again = await store.ack(alert?.id ?? "", { ...actor, id: "key_2" });
    expect(again.ackedBy).toBe("key_1");
    const audit = await db.query<{ action: string; target: string }>("SELECT action, target FROM audit_log");
    expect(audit).toContainEqual({ action: "alert.ack", target: alert?.id });
    await expect(store.ack("alr_nope", actor)).rejects.toMatchObject({ code: "not-found" });
  });
});

describe("built-in rules on synthetic history", () => {
  it("lease-missing fires once nobody has held a lease for leaseMissingS, naming what stopped", async () => {
    const { engine, clock } = await setup({
      fleet: { leaseHolder: async (name) => (name === "usage-aggregator" ? null : "control-1") },
      config: { ops: { alerts: { leaseMissingS: 30 } } },
    });
    expect((await engine.evaluate()).fired).toEqual([]);
    clock.now += 29_000;
    expect((await engine.evaluate()).fired).toEqual([]);
    clock.now += 1000;
    const { fired } = await engine.evaluate();
    expect(fired.map((a) => [a.rule, a.subject, a.severity])).toEqual([
      ["lease-missing", "usage-aggregator", "critical"],
    ]);
    expect(fired[0]?.summary).toBe(
      "nobody has held the usage-aggregator lease for 30 s: usage is not aggregated and the nodes' spools grow",
    );
  });

  it("node-silent fires for a node whose samples stopped while others report; not when all stopped", async () => {
    const { engine, history, clock } = await setup({
      fleet: { nodes: async () => ["api-1", "api-2"] },
      config: { ops: { alerts: { nodeSilentS: 60 } } },
    });
    await history.write([
      ...samples("memory", "api-1", T0 - 5 * MIN, T0, () => 1e8),
      ...samples("memory", "api-2", T0 - 5 * MIN, T0 - 2 * MIN, () => 1e8),
    ]);
    const { fired } = await engine.evaluate();
    expect(fired.map((a) => [a.rule, a.subject])).toEqual([["node-silent", "api-2"]]);
    expect(fired[0]?.summary).toMatch(
      /^node api-2 has answered no metrics scrape for 2 min \(since 2026-03-10T11:58:00.000Z\)/,
    );
    // Ten minutes on, nobody reports: the sampler is down (lease-missing says so), not every node.
    clock.now += 10 * MIN;
    await engine.evaluate();
    const { resolved } = await engine.evaluate();
    expect(resolved.map((a) => a.subject)).toEqual(["api-2"]);
  });

  it("anomaly fires when every sample of the window is beyond mean + k·stddev, and not within the stddev floor", async () => {
    const { engine, history } = await setup({
      config: { ops: { alerts: { anomalyMinutes: 5, anomalyK: 3 } } },
    });
    // A week of hourly history around 100 ms ± 5 ms (floored to 20 ms: threshold 160 ms), then 5 min at 400 ms.
    const week: MetricPoint[] = [];
    for (let at = T0 - 7 * 24 * HOUR; at < T0 - HOUR; at += 10 * MIN) {
      week.push({ series: "latency_p99", node: "api-1", at, value: 100 + 5 * Math.sin(at / HOUR) });
      week.push({ series: "latency_p99", node: "api-2", at, value: 100 + 5 * Math.sin(at / HOUR) });
    }
    await history.write(week);
    await history.write([
      ...samples("latency_p99", "api-1", T0 - 5 * MIN, T0, () => 400),
      ...samples("latency_p99", "api-2", T0 - 5 * MIN, T0, () => 150),
    ]);
    const { fired } = await engine.evaluate();
    expect(fired.map((a) => [a.rule, a.subject])).toEqual([["anomaly.latency_p99", "api-1"]]);
    expect(fired[0]?.summary).toMatch(
      /^p99 latency on api-1 has stayed above 160 ms for 5 min \(now 400 ms; usually 100 ms ± /,
    );
    expect(fired[0]?.figures).toMatchObject({ value: 400, k: 3, minutes: 5 });
    expect(fired[0]?.figures.threshold).toBeCloseTo(160, 0);
  });

  it("error-rate fires on the share of failed requests over the window, not on a handful of failures", async () => {
    const { engine, history } = await setup({
      config: { ops: { alerts: { errorRateMax: 0.05, errorRateMinutes: 2 } } },
    });
    const from = T0 - 2 * MIN;
    await history.write([
      // api-1: 10 req/s, 20% failing. api-2: 0.1 req/s, 50% failing: ~6 requests in 2 min, 3 failed.
      ...samples("request_rate", "api-1", from, T0, () => 10),
      ...samples("error_rate", "api-1", from, T0, () => 0.2),
      ...samples("request_rate", "api-2", from, T0, () => 0.02),
      ...samples("error_rate", "api-2", from, T0, () => 0.5),
    ]);
    const { fired } = await engine.evaluate();
    expect(fired.map((a) => [a.rule, a.subject, a.severity])).toEqual([["error-rate", "api-1", "critical"]]);
    expect(fired[0]?.summary).toBe(
      "20% of the 1350 resize requests on api-1 were answered 5xx over the last 2 min (limit 5%)",
    );
  });

  it("oldest-job-age never shows a figure rounded down onto its limit", async () => {
    const { engine, history } = await setup({ config: { ops: { alerts: { oldestJobAgeMaxS: 1 } } } });
    await history.write([
      { series: "queue_oldest_age", node: "api-1", at: T0, value: 1.04 },
      { series: "queue_depth", node: "api-1", at: T0, value: 7 },
    ]);
    const { fired } = await engine.evaluate();
    expect(fired.map((a) => [a.rule, a.subject, a.figures.oldestJobAgeS])).toEqual([
      ["oldest-job-age", "api-1", 1.1],
    ]);
    expect(fired[0]?.summary).toBe(
      "the oldest job waiting for a worker on api-1 has waited 1.1 s (limit 1 s); 7 jobs are queued",
    );
  });
});
