import type { Logger } from "pino";
import type { EventLog } from "../events.js";
import { FLEET_NODE } from "../series.js";
import type { AlertStore } from "./alert-store.js";
import { seconds } from "./format.js";
import { WATCHED_LEASES } from "./limit-rules.js";
import { type Alert, alertKey, type Finding } from "./model.js";
import type { AlertSettings, HistoryReader, LeaseView, Rule, RuleContext } from "./rule.js";

/** A condition must be false this many evaluations in a row before its alert resolves: no flapping on one good sample. */
export const CLEAR_EVALUATIONS = 2;
/** A node neither in discovery nor sampled for this long is forgotten (and its node-silent alert resolves). */
export const FORGET_NODE_MS = 3_600_000;
const TRIM_EVERY_MS = 3_600_000;

export type AlertNotification = "alert.fired" | "alert.resolved";

/** What the engine needs to know about the fleet besides the history. */
export interface FleetFacts {
  /** Ids of the nodes registered in discovery now. */
  nodes(): Promise<string[]>;
  /** The local sampler's last successful scrape per node (empty where the sampler does not run). */
  lastScrape(): ReadonlyMap<string, number>;
  /** Who holds a singleton's lease; null when nobody does (absent or expired). */
  leaseHolder(name: string): Promise<string | null>;
}

export interface AlertEngineDeps {
  store: AlertStore;
  rules: readonly Rule[];
  history: HistoryReader;
  fleet: FleetFacts;
  settings: AlertSettings;
  sampleIntervalMs: number;
  spoolMaxBytes: number;
  events: Pick<EventLog, "record">;
  /** Called once per episode when it fires and once when it resolves; never for events. */
  notify: (type: AlertNotification, alert: Alert) => void;
  logger: Logger;
  /** Epoch ms; a fake clock in tests. */
  clock?: () => number;
}

export interface Evaluation {
  fired: Alert[];
  resolved: Alert[];
  /** Findings of this cycle (firing alerts, new or not). */
  findings: Finding[];
  /** Rules that threw: their open alerts were left as they were. */
  failedRules: string[];
}

/**
 * Evaluates every rule each cycle and keeps the `alerts` table in step:
 * a new finding opens an episode (the partial unique index de-duplicates),
 * a repeated one refreshes its figures, and an open alert whose condition
 * was false for CLEAR_EVALUATIONS cycles in a row resolves. Fired and
 * resolved episodes are recorded as events and handed to `notify`.
 *
 * Runs on one node at a time (the `alert-evaluator` singleton); the small
 * state it keeps in memory (how long a lease has been missing, how many
 * cycles an alert has been clear) restarts with the lease, which at worst
 * delays a resolution or a lease-missing alert by one cycle or one limit.
 */
export class AlertEngine {
  readonly #clock: () => number;
  /** Alert id → consecutive evaluations its condition was false. */
  readonly #clearRuns = new Map<string, number>();
  /** Node → when this evaluator first saw it in discovery without a sample. */
  readonly #firstSeen = new Map<string, number>();
  /** Lease → since when this evaluator has seen nobody hold it. */
  readonly #missingSince = new Map<string, number>();
  #knownNodes: string[] = [];
  #trimmedAt = 0;

  constructor(private readonly deps: AlertEngineDeps) {
    this.#clock = deps.clock ?? Date.now;
  }

  async evaluate(now = this.#clock()): Promise<Evaluation> {
    const ctx = await this.#context(now);
    const failedRules: string[] = [];
    const findings: Finding[] = [];
    for (const rule of this.deps.rules) {
      try {
        findings.push(...(await rule.evaluate(ctx)));
      } catch (error) {
        failedRules.push(rule.id);
        this.deps.logger.warn(
          { err: error, rule: rule.id },
          `could not evaluate alert rule ${rule.id} (history unavailable?); its open alerts stay as they are`,
        );
      }
    }
    const { fired, resolved } = await this.#apply(findings, failedRules, now);
    if (now - this.#trimmedAt > TRIM_EVERY_MS) {
      this.#trimmedAt = now;
      await this.deps.store.trim();
    }
    return { fired, resolved, findings, failedRules };
  }

  async #apply(findings: Finding[], failedRules: string[], now: number) {
    const open = new Map((await this.deps.store.firing()).map((a) => [a.key, a]));
    const fired: Alert[] = [];
    const resolved: Alert[] = [];
    const stillTrue = new Set<string>();
    for (const f of findings) {
      const key = alertKey(f);
      stillTrue.add(key);
      const existing = open.get(key);
      if (existing) {
        this.#clearRuns.delete(existing.id);
        await this.deps.store.refresh(existing.id, f, now);
        continue;
      }
      const alert = await this.deps.store.open(f, now);
      if (!alert) continue;
      fired.push(alert);
      await this.deps.events.record("alert.fired", `[${alert.severity}] ${alert.summary}`, detailsOf(alert));
      this.deps.notify("alert.fired", alert);
    }
    const failed = new Set(failedRules);
    for (const alert of open.values()) {
      if (stillTrue.has(alert.key) || failed.has(alert.rule)) continue;
      const runs = (this.#clearRuns.get(alert.id) ?? 0) + 1;
      if (runs < CLEAR_EVALUATIONS) {
        this.#clearRuns.set(alert.id, runs);
        continue;
      }
      this.#clearRuns.delete(alert.id);
      const done = await this.deps.store.resolve(alert.id, now);
      if (!done) continue;
      resolved.push(done);
      const lasted = seconds((now - Date.parse(done.startedAt)) / 1000);
      await this.deps.events.record(
        "alert.resolved",
        `resolved after ${lasted}: ${done.summary}`,
        detailsOf(done),
      );
      this.deps.notify("alert.resolved", done);
    }
    const openIds = new Set([...open.values()].map((a) => a.id));
    for (const id of this.#clearRuns.keys()) if (!openIds.has(id)) this.#clearRuns.delete(id);
    return { fired, resolved };
  }

  async #context(now: number): Promise<RuleContext> {
    const { settings, sampleIntervalMs, spoolMaxBytes, history } = this.deps;
    return {
      now,
      settings,
      sampleIntervalMs,
      spoolMaxBytes,
      history,
      nodes: await this.#nodes(now),
      leases: await this.#leases(now),
    };
  }

  /** Every node worth watching, with its last sample: in discovery, scraped, or sampled within the hour. */
  async #nodes(now: number): Promise<Map<string, number>> {
    const { fleet, history } = this.deps;
    try {
      this.#knownNodes = await fleet.nodes();
    } catch (error) {
      // Keep the last view: a KV outage must not make every node look removed.
      this.deps.logger.warn({ err: error }, "could not list the fleet for alerting; using the last view");
    }
    const seen = new Map<string, number>();
    const later = (node: string, at: number) => seen.set(node, Math.max(at, seen.get(node) ?? 0));
    for (const [node, p] of await history.latest("memory", FORGET_NODE_MS)) later(node, p.at);
    for (const [node, at] of fleet.lastScrape()) if (now - at < FORGET_NODE_MS) later(node, at);
    for (const node of this.#knownNodes) {
      if (seen.has(node)) {
        this.#firstSeen.delete(node);
        continue;
      }
      const first = this.#firstSeen.get(node) ?? now;
      this.#firstSeen.set(node, first);
      seen.set(node, first);
    }
    seen.delete(FLEET_NODE);
    return seen;
  }

  async #leases(now: number): Promise<LeaseView[]> {
    const views: LeaseView[] = [];
    for (const name of WATCHED_LEASES) {
      const holder = await this.deps.fleet.leaseHolder(name);
      if (holder) this.#missingSince.delete(name);
      else if (!this.#missingSince.has(name)) this.#missingSince.set(name, now);
      views.push({ name, holder, missingSince: holder ? null : (this.#missingSince.get(name) ?? now) });
    }
    return views;
  }
}

function detailsOf(alert: Alert): Record<string, unknown> {
  return {
    alert: alert.id,
    rule: alert.rule,
    subject: alert.subject,
    severity: alert.severity,
    figures: alert.figures,
  };
}
