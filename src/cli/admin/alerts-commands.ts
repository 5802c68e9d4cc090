import { type Command, Option } from "commander";
import { AdminClientError, type Alert, EXIT, type OpsEvent } from "./client.js";
import {
  type ConnectionFlags,
  clientFrom,
  connectionOptions,
  emit,
  positiveInt,
  run,
  usageExitCodes,
} from "./common.js";
import { type Column, renderDetails, renderTable, shortDate } from "./table.js";

interface ListFlags extends ConnectionFlags {
  state?: "firing" | "resolved";
  before?: string;
  limit?: number;
}

interface TestFlags extends ConnectionFlags {
  channel?: string;
}

interface EventFlags extends ConnectionFlags {
  kind?: string;
  before?: string;
  limit?: number;
}

export function registerAlertCommands(program: Command): void {
  const alerts = usageExitCodes(
    program
      .command("alerts")
      .description("alerts (firing and resolved), acknowledging them, test notifications"),
  );
  connectionOptions(
    alerts
      .command("list", { isDefault: true })
      .description("list alerts, newest first (firing and resolved)"),
  )
    .addOption(
      new Option("--state <state>", "only firing or only resolved alerts").choices(["firing", "resolved"]),
    )
    .option("--before <id>", "older than this alert (the cursor a previous page gave)")
    .option("--limit <n>", "at most this many alerts (the node's default is 100)", positiveInt)
    .action(run(listAlerts));
  connectionOptions(
    alerts
      .command("ack")
      .description("acknowledge an alert: tell the team someone is on it (it still resolves by itself)")
      .argument("<id>", "the alert, e.g. alr_01j…"),
  ).action(run(ackAlert));
  connectionOptions(
    alerts
      .command("test")
      .description("send a test notification to every channel (or one) and report how each delivery went"),
  )
    .option("--channel <id|name>", "only this channel")
    .action(run(testNotification));

  usageExitCodes(
    connectionOptions(
      program
        .command("events")
        .description("what the system did by itself or noticed (informational: these never notify)"),
    ),
  )
    .option("--kind <kind>", "e.g. sweep, job.dropped, alert, or lease for every lease.* event")
    .option("--before <id>", "older than this event (the cursor a previous page gave)")
    .option("--limit <n>", "at most this many events (the node's default is 100)", positiveInt)
    .action(run(listEvents));
}

async function listAlerts(flags: ListFlags): Promise<void> {
  const page = await clientFrom(flags).listAlerts({
    state: flags.state,
    before: flags.before,
    limit: flags.limit,
  });
  emit(flags, {
    json: page.items,
    quiet: page.items.map((a) => a.id),
    table: () =>
      page.items.length === 0
        ? `no ${flags.state ?? ""}${flags.state ? " " : ""}alerts\n`
        : renderTable(page.items, ALERT_COLUMNS),
  });
  if (page.next !== null) process.stderr.write(`older alerts: add --before ${page.next}\n`);
}

async function ackAlert(id: string, flags: ConnectionFlags): Promise<void> {
  const alert = await clientFrom(flags).ackAlert(id);
  emit(flags, {
    json: alert,
    quiet: [alert.id],
    table: () =>
      `acknowledged alert ${alert.id} (${alert.rule} on ${alert.subject})\n${renderDetails([
        ["state", alert.state],
        ["severity", alert.severity],
        ["summary", alert.summary],
        ["what to do", alert.runbook],
        ["started", shortDate(alert.startedAt, true)],
        ["resolved", shortDate(alert.resolvedAt, true)],
        ["acked by", alert.ackedBy],
        ["acked at", shortDate(alert.ackedAt, true)],
      ])}`,
  });
}

async function testNotification(flags: TestFlags): Promise<void> {
  const { items } = await clientFrom(flags).testNotification(flags.channel);
  if (items.length === 0) {
    throw new AdminClientError(
      "no notification channel is configured: add one under ops.webhooks in the config, or POST /admin/v1/notification-channels",
      EXIT.failed,
    );
  }
  emit(flags, {
    json: items,
    quiet: items.filter((r) => r.status === "delivered").map((r) => r.channel),
    table: () =>
      items
        .map((r) =>
          r.status === "delivered"
            ? `delivered to ${r.name} (${r.channel}): HTTP ${r.responseStatus}\n`
            : `FAILED to deliver to ${r.name} (${r.channel}): ${r.error}\n`,
        )
        .join(""),
  });
  const failed = items.filter((r) => r.status !== "delivered");
  if (failed.length > 0) {
    throw new AdminClientError(
      `${failed.length} of ${items.length} channel${items.length === 1 ? "" : "s"} did not take the test notification; check the URL and the receiver's log (GET /admin/v1/notification-deliveries has every attempt)`,
      EXIT.failed,
    );
  }
}

async function listEvents(flags: EventFlags): Promise<void> {
  const page = await clientFrom(flags).listEvents({
    kind: flags.kind,
    before: flags.before,
    limit: flags.limit,
  });
  emit(flags, {
    json: page.items,
    quiet: page.items.map((e) => e.id),
    table: () => (page.items.length === 0 ? "no events match\n" : renderTable(page.items, EVENT_COLUMNS)),
  });
  if (page.next !== null) process.stderr.write(`older events: add --before ${page.next}\n`);
}

const ALERT_COLUMNS: Column<Alert>[] = [
  { header: "ID", value: (a) => a.id },
  { header: "STATE", value: (a) => a.state },
  { header: "SEVERITY", value: (a) => a.severity },
  { header: "RULE", value: (a) => a.rule },
  { header: "SUBJECT", value: (a) => a.subject },
  { header: "STARTED", value: (a) => shortDate(a.startedAt) },
  { header: "ACKED BY", value: (a) => a.ackedBy },
  { header: "SUMMARY", value: (a) => a.summary, maxWidth: 90 },
];

const EVENT_COLUMNS: Column<OpsEvent>[] = [
  { header: "AT", value: (e) => shortDate(e.at, true) },
  { header: "KIND", value: (e) => e.kind },
  { header: "NODE", value: (e) => e.node },
  { header: "MESSAGE", value: (e) => e.message, maxWidth: 110 },
];
