import { beforeAll, describe, expect, it } from "vitest";
import type { Alert } from "../../src/ops/alerts/model.js";
import type { OpsEvent } from "../../src/ops/events.js";
import type { DeliveryResult } from "../../src/ops/notify/notifier.js";
import { type DeadLetter, deadLetters } from "../../src/queue/dead-letters.js";
import { jsonOutput as json, ok, type CliRun as Run, runAgainst } from "../helpers/cli.js";
import { type RunningNode, startNode } from "../helpers/node.js";
import { type Receiver, startReceiver, verifiesWith } from "../helpers/webhook-receiver.js";
import { message } from "../queue/job-queue.contract.js";

/**
 * `imgfleet alerts list|ack|test` and `imgfleet events` as an operator runs
 * them: a child process from source against a real node, whose webhook goes
 * to a real local receiver. The alert is opened through the node's own
 * alert store (the admin API has no "create alert"); everything else goes
 * through the CLI.
 */

const SECRET = "cli-test-secret-0123456789";

let n: RunningNode;
let receiver: Receiver;
let alert: Alert;

const cli = (...args: string[]): Promise<Run> => runAgainst(n, args);

beforeAll(async () => {
  receiver = await startReceiver([], { stopAfter: "manual" });
  n = await startNode(
    { ops: { webhooks: [{ name: "ops", url: receiver.url, secret: SECRET }] } },
    { stopAfter: "manual" },
  );
  const opened = await n.node.ops.alerts.store.open(
    {
      rule: "disk-full",
      subject: "control-1",
      severity: "warning",
      summary:
        "disk on control-1 will be full in ~9 days at the current trend (120 GB free, shrinking 13 GB/day)",
      runbook: "Order or attach a bigger disk before then.",
      figures: { daysLeft: 9.2 },
    },
    Date.now(),
  );
  if (!opened) throw new Error("the alert should have opened");
  alert = opened;
  await n.node.ops.events.record(
    "sweep",
    "deleted 3 usage spool segments whose batches were all committed in the last minute",
  );
  return async () => {
    await n.stop();
    await receiver.close();
  };
});

describe("imgfleet alerts", () => {
  it("lists alerts as a table and as JSON, and filters by state", async () => {
    const [table, asJson, resolved] = await Promise.all([
      cli("alerts", "list"),
      cli("alerts", "list", "--json", "--state", "firing"),
      cli("alerts", "list", "--state", "resolved"),
    ]);
    const lines = ok(table).trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +STATE +SEVERITY +RULE +SUBJECT +STARTED +ACKED BY +SUMMARY$/);
    expect(lines[1]).toMatch(
      new RegExp(
        `^${alert.id} +firing +warning +disk-full +control-1 +\\S+ \\S+ +- +disk on control-1 will be full in ~9 days`,
      ),
    );
    const items = json<Alert[]>(asJson);
    expect(items).toEqual([
      expect.objectContaining({ id: alert.id, rule: "disk-full", runbook: alert.runbook }),
    ]);
    expect(ok(resolved)).toBe("no resolved alerts\n");
  });

  it("acknowledges an alert with the admin key's id, and refuses an unknown one (exit 1)", async () => {
    const [acked, unknown, badState] = await Promise.all([
      cli("alerts", "ack", alert.id),
      cli("alerts", "ack", "alr_00000000000000000000000000"),
      cli("alerts", "list", "--state", "open"),
    ]);
    const out = ok(acked);
    expect(out).toMatch(new RegExp(`^acknowledged alert ${alert.id} \\(disk-full on control-1\\)\n`));
    expect(out).toMatch(/^what to do +Order or attach a bigger disk before then\.$/m);
    expect(out).toMatch(/^acked by +key_\w+$/m);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no alert alr_0+; `imgfleet alerts list` shows the alerts/);
    expect(badState.code).toBe(2);
    const [again] = json<Alert[]>(await cli("alerts", "list", "--json"));
    expect(again?.ackedBy).toMatch(/^key_/);
    const acks = json<OpsEvent[]>(await cli("events", "--kind", "alert.acked", "--json"));
    expect(acks.map((e) => e.message)).toEqual([`${again?.ackedBy} acknowledged: ${alert.summary}`]);
  });

  it("sends a signed test notification to every channel, or reports the channel that failed (exit 1)", async () => {
    const sent = ok(await cli("alerts", "test"));
    expect(sent).toBe("delivered to ops (cfg_ops): HTTP 200\n");
    const received = await receiver.next((r) => (r.json as { type?: string }).type === "test");
    expect(verifiesWith(SECRET, received)).toBe(true);

    const dead = await startReceiver([503]);
    const made = await n.admin("POST", "/notification-channels", { name: "flaky", url: dead.url });
    expect(made.status).toBe(201);
    const [one, missing] = await Promise.all([
      cli("alerts", "test", "--channel", "flaky", "--json"),
      cli("alerts", "test", "--channel", "nope"),
    ]);
    expect(one.code).toBe(1);
    expect(JSON.parse(one.stdout) as DeliveryResult[]).toEqual([
      expect.objectContaining({ name: "flaky", status: "failed", attempts: 1, responseStatus: 503 }),
    ]);
    expect(one.stderr).toMatch(/1 of 1 channel did not take the test notification/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no notification channel nope/);
  });
});

describe("imgfleet events", () => {
  it("lists events newest first, filtered by kind, as a table or JSON", async () => {
    const [table, asJson] = await Promise.all([
      cli("events", "--kind", "sweep"),
      cli("events", "--json", "--limit", "500"),
    ]);
    const lines = ok(table).trimEnd().split("\n");
    expect(lines[0]).toMatch(/^AT +KIND +NODE +MESSAGE$/);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(
        / sweep +\S+ +deleted 3 usage spool segments whose batches were all committed in the last minute$/,
      ),
    ]);
    const events = json<OpsEvent[]>(asJson);
    expect(events.map((e) => e.kind)).toContain("sweep");
    expect(events.every((e, i) => i === 0 || (events[i - 1]?.id ?? "") > e.id)).toBe(true);
  });
});

describe("imgfleet dead-letters", () => {
  it("says when there is none, then lists a job given up with its reason, as a table or JSON", async () => {
    expect(ok(await cli("dead-letters"))).toBe("no job has been given up\n");
    const job = message({ tenant: "ten_01example" });
    await deadLetters.record(n.node.adapters.db, {
      job,
      workerNode: "worker-2",
      reason: "data-path",
      detail: "could not fetch the staged input from http://api-1:8080 before the job's deadline",
      attempts: 1,
    });
    const [table, asJson] = await Promise.all([
      cli("dead-letters"),
      cli("dead-letters", "--json", "--limit", "5"),
    ]);
    const lines = ok(table).trimEnd().split("\n");
    expect(lines[0]).toMatch(/^AT +JOB +TENANT +REASON +ATTEMPTS +WORKER +STAGED ON +DETAIL$/);
    expect(lines[1]).toContain(job.id);
    expect(lines[1]).toMatch(/ten_01example +data-path +1 +worker-2 +n1 +could not fetch/);
    expect(json<DeadLetter[]>(asJson)).toEqual([
      expect.objectContaining({ jobId: job.id, reason: "data-path", workerNode: "worker-2", attempts: 1 }),
    ]);
  });
});
