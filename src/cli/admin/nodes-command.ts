import type { Command } from "commander";
import type { DeadLetter, FleetNode } from "./client.js";
import {
  type ConnectionFlags,
  clientFrom,
  connectionOptions,
  emit,
  positiveInt,
  run,
  usageExitCodes,
} from "./common.js";
import { type Column, renderTable, shortDate } from "./table.js";

export function registerNodesCommand(program: Command): void {
  usageExitCodes(
    connectionOptions(
      program
        .command("nodes")
        .description("list the nodes of the fleet (from service discovery), with their roles and load"),
    ),
  ).action(run(nodes));
  usageExitCodes(
    connectionOptions(
      program
        .command("dead-letters")
        .description(
          "list jobs given up for good (every delivery crashed its worker, or the bytes could not cross nodes)",
        )
        .option("--limit <n>", "at most this many, newest first (default 100)", positiveInt),
    ),
  ).action(run(listDeadLetters));
}

async function listDeadLetters(flags: ConnectionFlags & { limit?: number }): Promise<void> {
  const { items } = await clientFrom(flags).deadLetters({ limit: flags.limit });
  emit(flags, {
    json: items,
    quiet: items.map((d) => d.jobId),
    table: () =>
      items.length === 0 ? "no job has been given up\n" : renderTable(items, DEAD_LETTER_COLUMNS),
  });
}

async function nodes(flags: ConnectionFlags): Promise<void> {
  const { items } = await clientFrom(flags).nodes();
  emit(flags, {
    json: items,
    quiet: items.map((n) => n.id),
    table: () => (items.length === 0 ? "no node has registered\n" : renderTable(items, NODE_COLUMNS)),
  });
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return s < 172_800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`;
}

const DEAD_LETTER_COLUMNS: Column<DeadLetter>[] = [
  { header: "AT", value: (d) => shortDate(d.at, true) },
  { header: "JOB", value: (d) => d.jobId },
  { header: "TENANT", value: (d) => d.tenant },
  { header: "REASON", value: (d) => d.reason },
  { header: "ATTEMPTS", value: (d) => d.attempts, align: "right" },
  { header: "WORKER", value: (d) => d.workerNode },
  { header: "STAGED ON", value: (d) => d.stagedOn },
  { header: "DETAIL", value: (d) => d.detail },
];

const NODE_COLUMNS: Column<FleetNode>[] = [
  { header: "NODE", value: (n) => n.id },
  { header: "ROLES", value: (n) => n.roles },
  { header: "VERSION", value: (n) => n.version },
  { header: "URL", value: (n) => n.url },
  { header: "UP", value: (n) => ago(n.startedAt), align: "right" },
  { header: "SEEN", value: (n) => `${ago(n.seenAt)} ago`, align: "right" },
  { header: "IN FLIGHT", value: (n) => n.load.inFlight, align: "right" },
  { header: "QUEUE", value: (n) => n.load.queueDepth, align: "right" },
  {
    header: "WORKERS",
    value: (n) => (n.load.workers ? `${n.load.workersBusy}/${n.load.workers} busy` : null),
  },
  { header: "RSS", value: (n) => `${Math.round(n.load.rssBytes / 2 ** 20)} MB`, align: "right" },
];
