import { describe, expect, it } from "vitest";
import type { Alert } from "../../src/ops/alerts/model.js";
import type { Delivery } from "../../src/ops/notify/deliveries.js";
import type { GenericPayload } from "../../src/ops/notify/payload.js";
import { slowJob, solidImage } from "../helpers/images.js";
import { type RunningNode, startNode } from "../helpers/node.js";
import { eventually, type Received, startReceiver, verifiesWith } from "../helpers/webhook-receiver.js";

/**
 * Real anomalies injected into a running node (real HTTP, real workers,
 * real sampler and evaluator at 1 s), seen by a real webhook receiver:
 * the alert fires, the notification is signed and carries the runbook line,
 * and the alert resolves once the cause is removed.
 */

const SECRET = "test-secret-0123456789abcdef";

/** Sampling and evaluation every second, so a test sees a condition within seconds. */
function fastOps(webhooks: unknown[], alerts: Record<string, number> = {}) {
  return { ops: { sampleIntervalMs: 1000, webhooks, alerts } };
}

function payload(r: Received): GenericPayload {
  return r.json as GenericPayload;
}

const isAlert = (type: string, rule: string) => (r: Received) =>
  payload(r)?.type === type && payload(r)?.alert?.rule === rule;

async function alerts(n: RunningNode, state?: string): Promise<Alert[]> {
  const res = await n.admin("GET", `/alerts${state ? `?state=${state}` : ""}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Alert[] }).items;
}

describe("alerts on a running node", () => {
  it("fires spool-backlog when the aggregator stops, notifies signed with the runbook, retries a failing receiver, and resolves when it restarts", async () => {
    const receiver = await startReceiver();
    // Answers 500 twice, then 200: three attempts, all in the delivery log.
    const flaky = await startReceiver([500, 500]);
    const n = await startNode({
      ...fastOps(
        [
          { name: "ops", url: receiver.url, secret: SECRET },
          { name: "flaky", url: flaky.url },
        ],
        { spoolBacklogMaxS: 10 },
      ),
      usage: { flushIntervalMs: 100, confirmIntervalMs: 100, spool: { segmentBytes: 4096 } },
    });
    const image = await solidImage(40, 30);

    // A routine event meanwhile: the outbox publisher's lease vanishes, is lost and taken again.
    await n.node.adapters.leasesKv.delete("lease.outbox-publisher");
    // The cause: nobody commits usage, so sealed batches wait in the spool.
    await n.node.usage.aggregator.stop();
    for (let i = 0; i < 20; i++) expect((await n.post("/v1/resize?w=20", image)).status).toBe(200);

    const fired = await receiver.next(isAlert("alert.fired", "spool-backlog"), 40_000);
    expect(verifiesWith(SECRET, fired)).toBe(true);
    expect(verifiesWith("another secret", fired)).toBe(false);
    expect(fired.headers["x-imgfleet-event"]).toBe("alert.fired");
    const body = payload(fired);
    expect(body.alert).toMatchObject({
      rule: "spool-backlog",
      severity: "warning",
      subject: n.node.adapters.nodeId,
    });
    expect(body.alert.summary).toMatch(
      /^usage on .+ has waited \d+ s to be committed \(limit 10 s\); its spool holds /,
    );
    expect(body.alert.runbook).toMatch(/usage-aggregator lease/);
    expect(body.fleet.node).toBe(n.node.adapters.nodeId);
    const firing = await alerts(n, "firing");
    expect(firing.map((a) => [a.id, a.rule])).toEqual([[body.alert.id, "spool-backlog"]]);

    // Remove the cause: the spool drains, and two clean evaluations later the alert resolves.
    n.node.usage.aggregator.start();
    const resolved = await receiver.next(isAlert("alert.resolved", "spool-backlog"), 30_000);
    expect(verifiesWith(SECRET, resolved)).toBe(true);
    expect(payload(resolved).alert).toMatchObject({ id: body.alert.id, resolvedAt: expect.any(String) });
    expect((await alerts(n, "resolved")).map((a) => a.id)).toContain(body.alert.id);

    // The flaky channel got the fired notification on the third attempt, unsigned (it has no secret),
    // and the resolution only after it: a receiver never sees "resolved" before "fired".
    await n.node.ops.alerts.notifier.idle();
    expect(flaky.received.map((r) => [payload(r).type, r.status])).toEqual([
      ["alert.fired", 500],
      ["alert.fired", 500],
      ["alert.fired", 200],
      ["alert.resolved", 200],
    ]);
    const flakyFired = flaky.received.filter(isAlert("alert.fired", "spool-backlog"));
    expect(new Set(flakyFired.map((r) => r.headers["x-imgfleet-delivery"])).size).toBe(1);
    expect(flakyFired[0]?.headers["x-imgfleet-signature"]).toBeUndefined();
    const log = await n.admin("GET", `/notification-deliveries?channel=cfg_flaky&alert=${body.alert.id}`);
    const attempts = ((await log.json()) as { items: Delivery[] }).items.reverse();
    expect(attempts.map((d) => [d.event, d.attempt, d.status, d.responseStatus])).toEqual([
      ["alert.fired", 1, "retrying", 500],
      ["alert.fired", 2, "retrying", 500],
      ["alert.fired", 3, "delivered", 200],
      ["alert.resolved", 1, "delivered", 200],
    ]);

    // Routine events were recorded, and none of them notified: the receiver saw only this alert's two notifications.
    await n.node.ops.selfHealing.flush();
    const events = await eventually(async () => {
      const page = (await (await n.admin("GET", "/events?limit=200")).json()) as {
        items: { kind: string; message: string }[];
      };
      return page.items.some((e) => e.kind === "lease.acquired") ? page : undefined;
    }, "the outbox publisher's lease to be taken again");
    const kinds = new Set(events.items.map((e) => e.kind));
    expect(kinds).toContain("lease.lost");
    expect(kinds).toContain("lease.acquired");
    expect(kinds).toContain("alert.fired");
    expect(kinds).toContain("alert.resolved");
    expect(events.items.map((e) => e.message)).toContainEqual(
      expect.stringMatching(
        /^deleted \d+ usage spool segments? whose batches were all committed in the last minute$/,
      ),
    );
    expect(receiver.received.map((r) => [payload(r).type, payload(r).alert.id])).toEqual([
      ["alert.fired", body.alert.id],
      ["alert.resolved", body.alert.id],
    ]);
  }, 90_000);

  it("fires oldest-job-age when slow images pile up behind one worker, and resolves when the queue drains", async () => {
    const receiver = await startReceiver();
    const n = await startNode({
      ...fastOps([{ name: "ops", url: receiver.url, secret: SECRET }], { oldestJobAgeMaxS: 1 }),
      workers: { count: 1 },
    });
    const slow = await slowJob();

    // Ten jobs for two job slots: the oldest waits for about four jobs' time (seconds, ~0.6 s each on an
    // idle machine), so several 1 s samples see it past the limit — five made it a race on a busy one.
    const burst = Array.from({ length: 10 }, () => n.post(`/v1/resize?${slow.query}`, slow.body));
    const fired = await receiver.next(isAlert("alert.fired", "oldest-job-age"), 40_000);
    expect(verifiesWith(SECRET, fired)).toBe(true);
    const body = payload(fired);
    expect(body.alert).toMatchObject({ severity: "critical", subject: "fleet" });
    expect(body.alert.summary).toMatch(
      /^the oldest job waiting for a worker has waited [\d.]+ s \(limit 1 s\); \d+ jobs are queued$/,
    );
    expect(body.alert.runbook).toMatch(/^Workers are not keeping up: add workers/);
    expect(body.alert.figures.oldestJobAgeS).toBeGreaterThan(1);

    await Promise.all(burst.map(async (r) => (await r).arrayBuffer()));
    const resolved = await receiver.next(isAlert("alert.resolved", "oldest-job-age"), 30_000);
    expect(payload(resolved).alert.id).toBe(body.alert.id);
  }, 90_000);

  it("sends a test notification on demand, and reports a channel that refuses it", async () => {
    const good = await startReceiver();
    const bad = await startReceiver([404]);
    const n = await startNode(fastOps([{ name: "good", url: good.url, secret: SECRET }]));
    const created = await n.admin("POST", "/notification-channels", {
      name: "bad",
      url: bad.url,
      kind: "slack",
    });
    expect(created.status).toBe(201);
    const channel = (await created.json()) as { id: string; url: string; signed: boolean };
    expect(channel).toMatchObject({ url: `${new URL(bad.url).origin}/…`, signed: false });

    const res = await n.admin("POST", "/notification-channels/test");
    const { items } = (await res.json()) as {
      items: { name: string; status: string; responseStatus: number }[];
    };
    expect(items.map((r) => [r.name, r.status, r.responseStatus])).toEqual([
      ["good", "delivered", 200],
      ["bad", "failed", 404],
    ]);
    const test = payload(await good.next(() => true));
    expect(test.type).toBe("test");
    expect(test.alert.summary).toMatch(/^test notification from imgfleet, requested by key_/);
    // The Slack-compatible body carries the summary and the runbook line in its text.
    const slack = (await bad.next(() => true)).json as { text: string; blocks: unknown[] };
    expect(slack.text).toMatch(/^🔔 TEST: test notification .*\nWhat to do: Nothing to do: this was a test/);
    expect(slack.blocks).toHaveLength(3);
    // A failed delivery is an event (never a notification).
    const events = (await (await n.admin("GET", "/events?kind=notification")).json()) as {
      items: { message: string }[];
    };
    expect(events.items.map((e) => e.message)).toEqual([
      "could not deliver a test notification to channel bad after 1 attempt: HTTP 404 Not Found",
    ]);

    expect((await n.admin("DELETE", `/notification-channels/${channel.id}`)).status).toBe(200);
    expect((await n.admin("DELETE", "/notification-channels/cfg_good")).status).toBe(409);
    const dup = await n.admin("POST", "/notification-channels", { name: "GOOD", url: good.url });
    expect(dup.status).toBe(409);
    const weak = await n.admin("POST", "/notification-channels", {
      name: "x",
      url: good.url,
      secret: "short",
    });
    expect(weak.status).toBe(400);
  });
});
