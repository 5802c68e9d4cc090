import { FLEET_NODE } from "../series.js";
import { bytes, pastLimit, percent, round, seconds } from "./format.js";
import type { Finding } from "./model.js";
import { coversWindow, finding, freshMs, type Rule, type RuleContext } from "./rule.js";

/**
 * Hard limits: thresholds an operator sets (`ops.alerts`), true the moment
 * the latest sample crosses them (error rate: over a window).
 */

/** An error share from fewer failed requests than this is noise (one 5xx among three requests). */
const MIN_FAILED_REQUESTS = 5;
/** The spool is "near full" from this share of usage.spool.maxBytes. */
const SPOOL_NEAR_FULL_SHARE = 0.8;

const errorRate: Rule = {
  id: "error-rate",
  severity: "critical",
  condition:
    "the share of resize requests answered 5xx on a node, over the last ops.alerts.errorRateMinutes, exceeds ops.alerts.errorRateMax (with at least 5 failed requests)",
  runbook:
    "Read the node's log for the 5xx causes (worker crashes, database or NATS errors) and `imgfleet events` for what changed; if only this node fails, drain and restart it.",
  async evaluate(ctx) {
    const { errorRateMax, errorRateMinutes } = ctx.settings;
    const windowMs = errorRateMinutes * 60_000;
    const findings: Finding[] = [];
    for (const node of await freshNodes(ctx, "error_rate")) {
      const range = { node, since: ctx.now - windowMs, until: ctx.now };
      const errors = await ctx.history.points("error_rate", range);
      if (!coversWindow(errors, ctx, windowMs)) continue;
      const rates = new Map((await ctx.history.points("request_rate", range)).map((p) => [p.at, p.value]));
      const intervalS = ctx.sampleIntervalMs / 1000;
      let requests = 0;
      let failed = 0;
      for (const p of errors) {
        const served = (rates.get(p.at) ?? 0) * intervalS;
        requests += served;
        failed += served * p.value;
      }
      if (failed < MIN_FAILED_REQUESTS || requests === 0) continue;
      const share = pastLimit(failed / requests, errorRateMax, 4);
      if (share <= errorRateMax) continue;
      findings.push(
        finding(
          this,
          node,
          `${percent(share)} of the ${Math.round(requests)} resize requests on ${node} were answered 5xx over the last ${errorRateMinutes} min (limit ${percent(errorRateMax)})`,
          {
            errorRate: share,
            requests: Math.round(requests),
            limit: errorRateMax,
            minutes: errorRateMinutes,
          },
        ),
      );
    }
    return findings;
  },
};

const oldestJobAge: Rule = {
  id: "oldest-job-age",
  severity: "critical",
  condition: "the oldest job waiting for a worker is older than ops.alerts.oldestJobAgeMaxS",
  runbook:
    "Workers are not keeping up: add workers (workers.count, or start another worker node), check `imgfleet nodes` for worker nodes that are gone or idle, and look for slow inputs in the request log.",
  async evaluate(ctx) {
    const limitS = ctx.settings.oldestJobAgeMaxS;
    const ages = await queueValues(ctx, "queue_oldest_age");
    const depths = await ctx.history.latest("queue_depth", freshMs(ctx));
    const findings: Finding[] = [];
    for (const [subject, { node, value }] of ages) {
      const ageS = pastLimit(value, limitS, 1);
      if (ageS <= limitS) continue;
      const depth = depths.get(node)?.value;
      const queued = depth === undefined ? "" : `; ${Math.round(depth)} jobs are queued`;
      findings.push(
        finding(
          this,
          subject,
          `the oldest job waiting for a worker${where(subject)} has waited ${seconds(ageS)} (limit ${seconds(limitS)})${queued}`,
          { oldestJobAgeS: ageS, limitS, queueDepth: depth ?? null },
        ),
      );
    }
    return findings;
  },
};

const spoolBacklog: Rule = {
  id: "spool-backlog",
  severity: "warning",
  condition: "a node's oldest usage batch not yet committed is older than ops.alerts.spoolBacklogMaxS",
  runbook:
    "The usage aggregator is not committing: check that a control node holds the usage-aggregator lease (`imgfleet events --kind lease`) and that PostgreSQL answers. Nothing is lost while the spool has room.",
  async evaluate(ctx) {
    const limitS = ctx.settings.spoolBacklogMaxS;
    const ages = await ctx.history.latest("spool_oldest_age", freshMs(ctx));
    const sizes = await ctx.history.latest("spool_bytes", freshMs(ctx));
    const findings: Finding[] = [];
    for (const [node, { value }] of ages) {
      const ageS = pastLimit(value, limitS, 1);
      if (node === FLEET_NODE || ageS <= limitS) continue;
      const size = sizes.get(node)?.value ?? 0;
      findings.push(
        finding(
          this,
          node,
          `usage on ${node} has waited ${seconds(ageS)} to be committed (limit ${seconds(limitS)}); its spool holds ${bytes(size)} of ${bytes(ctx.spoolMaxBytes)}`,
          { oldestBatchAgeS: ageS, limitS, spoolBytes: size, spoolMaxBytes: ctx.spoolMaxBytes },
        ),
      );
    }
    return findings;
  },
};

const spoolNearFull: Rule = {
  id: "spool-near-full",
  severity: "critical",
  condition: `a node's usage spool holds more than ${SPOOL_NEAR_FULL_SHARE * 100}% of usage.spool.maxBytes`,
  runbook:
    "Restore aggregation first (see spool-backlog); if that cannot happen soon, raise usage.spool.maxBytes on this node (and its disk) and restart it. At the bound the node refuses requests (onFull: reject).",
  async evaluate(ctx) {
    const sizes = await ctx.history.latest("spool_bytes", freshMs(ctx));
    const findings: Finding[] = [];
    for (const [node, { value: size }] of sizes) {
      const share = size / ctx.spoolMaxBytes;
      if (node === FLEET_NODE || share < SPOOL_NEAR_FULL_SHARE) continue;
      findings.push(
        finding(
          this,
          node,
          `the usage spool on ${node} is ${percent(share)} full (${bytes(size)} of ${bytes(ctx.spoolMaxBytes)}); at the bound the node refuses requests`,
          { spoolBytes: size, spoolMaxBytes: ctx.spoolMaxBytes, share: round(share, 3) },
        ),
      );
    }
    return findings;
  },
};

/** A node can only go silent for an hour: after that it is forgotten (removed on purpose, or long dead and known). */
const nodeSilent: Rule = {
  id: "node-silent",
  severity: "critical",
  condition:
    "a node in discovery (or sampled within the last hour) has answered no metrics scrape for ops.alerts.nodeSilentS, while other nodes do",
  runbook:
    "Check the node: `systemctl status imgfleet@<role>` and its journal, and that the control node reaches its URL. If it was removed on purpose, acknowledge; the alert resolves an hour after the node was last seen.",
  async evaluate(ctx) {
    const limitMs = ctx.settings.nodeSilentS * 1000;
    const silent = [...ctx.nodes].filter(([, seen]) => ctx.now - seen > limitMs);
    // Every node silent means the sampler is what stopped; lease-missing reports that, once.
    if (silent.length === 0 || silent.length === ctx.nodes.size) return [];
    return silent.map(([node, seen]) =>
      finding(
        this,
        node,
        `node ${node} has answered no metrics scrape for ${seconds((ctx.now - seen) / 1000)} (since ${new Date(seen).toISOString()}); the fleet cannot see its health`,
        {
          silentS: Math.round((ctx.now - seen) / 1000),
          lastSeen: new Date(seen).toISOString(),
          limitS: ctx.settings.nodeSilentS,
        },
      ),
    );
  },
};

/** What stops when nobody runs a singleton. */
const LEASE_IMPACT: Record<string, string> = {
  "outbox-publisher": "tenant and key changes do not reach the API nodes",
  "usage-aggregator": "usage is not aggregated and the nodes' spools grow",
  "metrics-sampler": "no metrics are sampled, so the other alert rules are blind",
};

export const WATCHED_LEASES = Object.keys(LEASE_IMPACT);

const leaseMissing: Rule = {
  id: "lease-missing",
  severity: "critical",
  condition: `nobody has held a control singleton's lease (${WATCHED_LEASES.join(", ")}) for ops.alerts.leaseMissingS`,
  runbook:
    "Start a control node (`systemctl start imgfleet@control`), or read the running control nodes' logs for lease errors (is NATS reachable from them?).",
  async evaluate(ctx) {
    const limitMs = ctx.settings.leaseMissingS * 1000;
    return ctx.leases
      .filter((l) => l.missingSince !== null && ctx.now - l.missingSince >= limitMs)
      .map((l) => {
        const forS = (ctx.now - (l.missingSince ?? ctx.now)) / 1000;
        return finding(
          this,
          l.name,
          `nobody has held the ${l.name} lease for ${seconds(forS)}: ${LEASE_IMPACT[l.name] ?? "its work is not done"}`,
          { lease: l.name, missingS: Math.round(forS), limitS: ctx.settings.leaseMissingS },
        );
      });
  },
};

export const LIMIT_RULES: readonly Rule[] = [
  errorRate,
  oldestJobAge,
  spoolBacklog,
  spoolNearFull,
  nodeSilent,
  leaseMissing,
];

/** Nodes (not the fleet aggregate) with a fresh value of the series. */
export async function freshNodes(ctx: RuleContext, series: "error_rate" | "latency_p99"): Promise<string[]> {
  const latest = await ctx.history.latest(series, freshMs(ctx));
  return [...latest.keys()].filter((n) => n !== FLEET_NODE);
}

/**
 * The queue is one stream shared by the fleet, so every node reports the
 * same depth and age: read the fleet's value (subject `fleet`) when the
 * sampler stores one, else each node's.
 */
export async function queueValues(
  ctx: RuleContext,
  series: "queue_oldest_age",
): Promise<Map<string, { node: string; value: number }>> {
  const latest = await ctx.history.latest(series, freshMs(ctx));
  const fleet = latest.get(FLEET_NODE);
  if (fleet) return new Map([["fleet", { node: FLEET_NODE, value: fleet.value }]]);
  return new Map([...latest].map(([node, p]) => [node, { node, value: p.value }]));
}

function where(subject: string): string {
  return subject === "fleet" ? "" : ` on ${subject}`;
}
