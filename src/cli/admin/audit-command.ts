import type { Command } from "commander";
import type { AuditEntry } from "./client.js";
import {
  type ConnectionFlags,
  clientFrom,
  connectionOptions,
  emit,
  instantOrAgo,
  positiveInt,
  run,
  usageExitCodes,
} from "./common.js";
import { type Column, renderTable, shortDate } from "./table.js";
import { optionalTenantId } from "./tenant-ref.js";

interface AuditFlags extends ConnectionFlags {
  tenant?: string;
  actor?: string;
  action?: string;
  /** ISO 8601, already resolved from `24h` and the like. */
  since?: string;
  before?: string;
  limit?: number;
}

export function registerAuditCommand(program: Command): void {
  usageExitCodes(
    connectionOptions(
      program.command("audit").description("show the audit trail of admin changes, newest first"),
    ),
  )
    .option("--tenant <tenant>", "changes to this tenant (name or id) and its keys")
    .option("--actor <id>", "changes made with this admin key (or `bootstrap`)")
    .option("--action <action>", "e.g. tenant.update, or tenant for every tenant.* action")
    .option("--since <when>", "from this long ago (24h, 7d) or an ISO 8601 date-time", instantOrAgo)
    .option("--before <id>", "older than this entry (the cursor a previous page gave)")
    .option("--limit <n>", "at most this many entries (the node's default is 100)", positiveInt)
    .action(run(audit));
}

async function audit(flags: AuditFlags): Promise<void> {
  const client = clientFrom(flags);
  const page = await client.listAudit({
    tenant: await optionalTenantId(client, flags.tenant),
    actor: flags.actor,
    action: flags.action,
    since: flags.since,
    before: flags.before,
    limit: flags.limit,
  });
  emit(flags, {
    json: page.items,
    quiet: page.items.map((e) => e.id),
    table: () =>
      page.items.length === 0 ? "no audit entries match\n" : renderTable(page.items, AUDIT_COLUMNS),
  });
  if (page.next !== null) process.stderr.write(`older entries: add --before ${page.next}\n`);
}

const AUDIT_COLUMNS: Column<AuditEntry>[] = [
  { header: "AT", value: (e) => shortDate(e.at, true) },
  { header: "ACTION", value: (e) => e.action },
  { header: "TARGET", value: (e) => e.target },
  // The tenant repeats the target for tenant actions; for a key it says whose key it was.
  { header: "TENANT", value: (e) => e.tenantId },
  { header: "ACTOR", value: (e) => e.actor },
  { header: "DETAILS", value: (e) => details(e.details), maxWidth: 60 },
];

/** `{"name":"acme","burst":5}` → `name=acme burst=5`: compact enough for one table cell. */
function details(value: Record<string, unknown>): string {
  return Object.entries(value)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}
