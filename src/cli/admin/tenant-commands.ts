import { createInterface } from "node:readline/promises";
import { type Command, Option } from "commander";
import type { OutputFormat } from "../../image/formats.js";
import {
  type AdminClient,
  AdminClientError,
  EXIT,
  type Tenant,
  type TenantLimitsInput,
  type TenantListQuery,
  type TenantPatchInput,
} from "./client.js";
import {
  type ConnectionFlags,
  clientFrom,
  connectionOptions,
  emit,
  list,
  number,
  positiveInt,
  run,
  UsageError,
  usageExitCodes,
} from "./common.js";
import { type Column, renderDetails, renderTable, shortDate } from "./table.js";
import { tenantId } from "./tenant-ref.js";

interface LimitFlags {
  rate?: number;
  burst?: number;
  maxInFlight?: number;
  /** "none" rather than null: commander turns a parser's null into "". */
  maxInputBytes?: number | "none";
  formats?: OutputFormat[] | "all";
}

interface UpdateFlags extends ConnectionFlags, LimitFlags {
  name?: string;
  status?: "active" | "suspended";
}

interface ListFlags extends ConnectionFlags {
  search?: string;
  status?: Tenant["status"];
  includeDeleted?: boolean;
  limit?: number;
  after?: string;
  all?: boolean;
}

interface DeleteFlags extends ConnectionFlags {
  yes?: boolean;
}

export function registerTenantCommands(program: Command): void {
  const tenants = usageExitCodes(program.command("tenants").description("create and manage tenants"));

  limitOptions(
    connectionOptions(
      tenants.command("create").description("create a tenant").argument("<name>", "its name, unique"),
    ),
  ).action(run(createTenant));

  connectionOptions(tenants.command("list").description("list tenants (live ones unless told otherwise)"))
    .option("--search <text>", "part of the name, or an exact id")
    .addOption(
      new Option("--status <status>", "only tenants with this status").choices([
        "active",
        "suspended",
        "deleted",
      ]),
    )
    .option("--include-deleted", "include deleted tenants")
    .option("--limit <n>", "at most this many (per page with --all; the node's default is 100)", positiveInt)
    .option("--after <id>", "start after this tenant id (the cursor a previous page gave)")
    .option("--all", "follow the pages to the end")
    .action(run(listTenants));

  connectionOptions(
    tenants.command("show").description("show one tenant").argument("<id>", "tenant name or id"),
  ).action(
    run(async (id: string, flags: ConnectionFlags) => {
      const client = clientFrom(flags);
      showTenant(await client.getTenant(await tenantId(client, id)), flags);
    }),
  );

  limitOptions(
    connectionOptions(tenants.command("update").description("change a tenant's name, limits or status"))
      .argument("<id>", "tenant name or id")
      .option("--name <name>", "a new name")
      .addOption(new Option("--status <status>", "suspend or resume").choices(["active", "suspended"])),
  ).action(run(updateTenant));

  registerStatusCommand(tenants, "suspend", "refuse the tenant's requests until resumed", "suspended");
  registerStatusCommand(tenants, "resume", "serve a suspended tenant again", "resumed");

  connectionOptions(
    tenants
      .command("delete")
      .description("delete a tenant and revoke all its API keys")
      .argument("<id>", "tenant name or id"),
  )
    .option("-y, --yes", "do not ask for confirmation")
    .action(run(deleteTenant));
}

/** `tenants suspend` and `tenants resume`: the same shape, one admin call each. */
function registerStatusCommand(
  tenants: Command,
  name: "suspend" | "resume",
  description: string,
  done: "suspended" | "resumed",
): void {
  connectionOptions(
    tenants.command(name).description(description).argument("<id>", "tenant name or id"),
  ).action(
    run(async (id: string, flags: ConnectionFlags) => {
      const client = clientFrom(flags);
      const tenant = await tenantId(client, id);
      const result =
        name === "suspend" ? await client.suspendTenant(tenant) : await client.resumeTenant(tenant);
      showTenant(result, flags, done);
    }),
  );
}

function limitOptions(command: Command): Command {
  return command
    .option("--rate <req/s>", "sustained requests per second", number)
    .option("--burst <n>", "requests allowed in a burst", number)
    .option("--max-in-flight <n>", "requests served at once", number)
    .option("--max-input-bytes <n|none>", "largest upload in bytes; none: the node's limit", bytesOrNone)
    .option(
      "--formats <list|all>",
      "output formats allowed, e.g. webp,jpeg; all: every format",
      formatsOrAll,
    );
}

function bytesOrNone(text: string): number | "none" {
  return text.trim().toLowerCase() === "none" ? "none" : number(text);
}

/** The node checks each name; here only the list is split, so its message names the bad one. */
function formatsOrAll(text: string): OutputFormat[] | "all" {
  return text.trim().toLowerCase() === "all" ? "all" : (list(text.toLowerCase()) as OutputFormat[]);
}

function limitsOf(flags: LimitFlags): TenantLimitsInput {
  const limits: TenantLimitsInput = {
    ratePerSecond: flags.rate,
    burst: flags.burst,
    maxInFlight: flags.maxInFlight,
    maxInputBytes: flags.maxInputBytes === "none" ? null : flags.maxInputBytes,
    outputFormats: flags.formats === "all" ? null : flags.formats,
  };
  // Only the flags given: an absent field leaves a limit as it is, while null ("none", "all") resets it.
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}

async function createTenant(name: string, flags: ConnectionFlags & LimitFlags): Promise<void> {
  const tenant = await clientFrom(flags).createTenant({ name, ...limitsOf(flags) });
  showTenant(tenant, flags, "created");
}

async function updateTenant(id: string, flags: UpdateFlags): Promise<void> {
  const patch: TenantPatchInput = { ...limitsOf(flags) };
  if (flags.name !== undefined) patch.name = flags.name;
  if (flags.status !== undefined) patch.status = flags.status;
  if (Object.keys(patch).length === 0) {
    throw new UsageError(
      "nothing to change: pass at least one of --name, --rate, --burst, --max-in-flight, --max-input-bytes, --formats, --status",
    );
  }
  const client = clientFrom(flags);
  showTenant(await client.updateTenant(await tenantId(client, id), patch), flags, "updated");
}

async function listTenants(flags: ListFlags): Promise<void> {
  const client = clientFrom(flags);
  const query: TenantListQuery = {
    search: flags.search,
    status: flags.status,
    // The API filters deleted tenants out before it applies `status`; asking for deleted ones means including them.
    includeDeleted: flags.includeDeleted || flags.status === "deleted" ? true : undefined,
    limit: flags.limit,
    after: flags.after,
  };
  if (flags.all) {
    printTenants(await client.listAllTenants(query), flags);
    return;
  }
  const page = await client.listTenants(query);
  printTenants(page.items, flags);
  if (page.next !== null) {
    process.stderr.write(`more tenants: add --after ${page.next} for the next page, or --all\n`);
  }
}

async function deleteTenant(ref: string, flags: DeleteFlags): Promise<void> {
  const client = clientFrom(flags);
  const id = await tenantId(client, ref);
  if (!flags.yes) await confirmDelete(client, id);
  showTenant(await client.deleteTenant(id), flags, "deleted");
}

/** Deleting revokes every key at once and cannot be undone through the API, so a person confirms it. */
async function confirmDelete(client: AdminClient, id: string): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new UsageError(
      `refusing to delete tenant ${id} without confirmation: standard input is not a terminal, so nobody can be asked; add --yes`,
    );
  }
  const tenant = await client.getTenant(id);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // Ctrl+C or Ctrl+D rejects the question: that is a "no" too.
  const answer = await rl
    .question(`Delete tenant ${tenant.id} (${tenant.name})? All its API keys are revoked at once. [y/N] `)
    .catch(() => {
      process.stderr.write("\n");
      return "";
    })
    .finally(() => rl.close());
  if (!/^y(es)?$/i.test(answer.trim())) {
    throw new AdminClientError("not deleted: the deletion was not confirmed", EXIT.failed);
  }
}

const TENANT_COLUMNS: Column<Tenant>[] = [
  { header: "ID", value: (t) => t.id },
  { header: "NAME", value: (t) => t.name, maxWidth: 40 },
  { header: "STATUS", value: (t) => t.status },
  { header: "RATE/S", value: (t) => t.ratePerSecond, align: "right" },
  { header: "BURST", value: (t) => t.burst, align: "right" },
  { header: "IN FLIGHT", value: (t) => t.maxInFlight, align: "right" },
  { header: "MAX BYTES", value: (t) => t.maxInputBytes, align: "right" },
  { header: "FORMATS", value: (t) => t.outputFormats },
  { header: "CREATED", value: (t) => shortDate(t.createdAt) },
];

function printTenants(tenants: Tenant[], flags: ConnectionFlags): void {
  emit(flags, {
    json: tenants,
    quiet: tenants.map((t) => t.id),
    table: () => (tenants.length === 0 ? "no tenants match\n" : renderTable(tenants, TENANT_COLUMNS)),
  });
}

/** One tenant; after a change, a line saying what happened comes first. */
function showTenant(tenant: Tenant, flags: ConnectionFlags, done?: string): void {
  emit(flags, {
    json: tenant,
    quiet: [tenant.id],
    table: () => (done ? `${done} tenant ${tenant.id} (${tenant.name})\n` : "") + tenantDetails(tenant),
  });
}

function tenantDetails(tenant: Tenant): string {
  return renderDetails([
    ["id", tenant.id],
    ["name", tenant.name],
    ["status", tenant.status],
    ["rate (req/s)", tenant.ratePerSecond],
    ["burst", tenant.burst],
    ["max in flight", tenant.maxInFlight],
    // null is the node's own setting: say so, since "-" alone could read as "none allowed".
    ["max input bytes", tenant.maxInputBytes ?? "- (the node's limit)"],
    ["formats", tenant.outputFormats ?? "- (all)"],
    ["created", shortDate(tenant.createdAt, true)],
    ["updated", shortDate(tenant.updatedAt, true)],
    ["deleted", shortDate(tenant.deletedAt, true)],
  ]);
}
