import { type Command, Option } from "commander";
import type { TenantScope } from "../../identity/model.js";
import type { ApiKey, IssuedKey, RotatedKey } from "./client.js";
import {
  type ConnectionFlags,
  clientFrom,
  collect,
  connectionOptions,
  duration,
  emit,
  instant,
  run,
  usageExitCodes,
} from "./common.js";
import { type Column, renderDetails, renderTable, shortDate } from "./table.js";
import { tenantId } from "./tenant-ref.js";

interface ExpiryFlags {
  /** Seconds from now. */
  expiresIn?: number;
  /** ISO 8601, already normalised. */
  expiresAt?: string;
}

interface CreateKeyFlags extends ConnectionFlags, ExpiryFlags {
  name?: string;
  scope?: string[];
}

interface ListKeyFlags extends ConnectionFlags {
  includeRevoked?: boolean;
}

interface RotateFlags extends ConnectionFlags {
  /** Seconds. */
  grace?: number;
}

export function registerKeyCommands(program: Command): void {
  const keys = usageExitCodes(program.command("keys").description("manage a tenant's API keys"));

  expiryOptions(connectionOptions(keys.command("create").description("create an API key for a tenant")))
    .argument("<tenant>", "tenant name or id")
    .option("--name <name>", "what the key is for, e.g. web or batch")
    .option(
      "--scope <scope>",
      "resize, jobs or usage:read; repeat or comma-separate (default: resize)",
      collect,
    )
    .action(run(createKey));

  connectionOptions(keys.command("list").description("list a tenant's API keys"))
    .argument("<tenant>", "tenant name or id")
    .option("--include-revoked", "include revoked keys")
    .action(
      run(async (tenant: string, flags: ListKeyFlags) => {
        const client = clientFrom(flags);
        const keys = await client.listKeys(await tenantId(client, tenant), flags.includeRevoked);
        printKeys(keys.items, flags, "tenant");
      }),
    );

  connectionOptions(keys.command("revoke").description("revoke an API key at once"))
    .argument("<tenant>", "tenant name or id")
    .argument("<key>", "key id")
    .action(
      run(async (tenant: string, key: string, flags: ConnectionFlags) => {
        const client = clientFrom(flags);
        showKey(await client.revokeKey(await tenantId(client, tenant), key), flags, `revoked API key ${key}`);
      }),
    );

  connectionOptions(
    keys.command("rotate").description("replace an API key; the old one keeps working for a grace period"),
  )
    .argument("<tenant>", "tenant name or id")
    .argument("<key>", "key id")
    .option(
      "--grace <duration>",
      "how long the old key keeps working, e.g. 1h or 3600s (default: the node's)",
      duration,
    )
    .action(run(rotateKey));

  registerAdminKeyCommands(program);
}

function registerAdminKeyCommands(program: Command): void {
  const adminKeys = usageExitCodes(program.command("admin-keys").description("manage admin keys"));

  expiryOptions(connectionOptions(adminKeys.command("create").description("create an admin key")))
    .option("--name <name>", "whose key it is, e.g. ops or ci")
    .action(
      run(async (flags: ConnectionFlags & ExpiryFlags & { name?: string }) => {
        const issued = await clientFrom(flags).createAdminKey({
          name: flags.name,
          expiresAt: expiryOf(flags),
        });
        showIssued(issued, flags, `created admin key ${issued.id}`);
      }),
    );

  connectionOptions(adminKeys.command("list").description("list admin keys"))
    .option("--include-revoked", "include revoked keys")
    .action(
      run(async (flags: ListKeyFlags) => {
        printKeys((await clientFrom(flags).listAdminKeys(flags.includeRevoked)).items, flags, "admin");
      }),
    );

  connectionOptions(adminKeys.command("revoke").description("revoke an admin key at once"))
    .argument("<key>", "key id")
    .action(
      run(async (key: string, flags: ConnectionFlags) => {
        showKey(await clientFrom(flags).revokeAdminKey(key), flags, `revoked admin key ${key}`);
      }),
    );
}

function expiryOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--expires-in <duration>", "expire after e.g. 30d, 12h or 90m (default: never)")
        .argParser(duration)
        .conflicts("expiresAt"),
    )
    .addOption(new Option("--expires-at <date-time>", "expire at an ISO 8601 date-time").argParser(instant));
}

/** The expiry as the API takes it; undefined leaves the node's default (never). */
function expiryOf(flags: ExpiryFlags): string | undefined {
  if (flags.expiresIn !== undefined) return new Date(Date.now() + flags.expiresIn * 1000).toISOString();
  return flags.expiresAt;
}

async function createKey(tenant: string, flags: CreateKeyFlags): Promise<void> {
  const client = clientFrom(flags);
  const id = await tenantId(client, tenant);
  const issued = await client.createKey(id, {
    name: flags.name,
    // Passed as typed: the node names the valid scopes when one is wrong, so the list lives in one place.
    scopes: flags.scope as TenantScope[] | undefined,
    expiresAt: expiryOf(flags),
  });
  showIssued(
    issued,
    flags,
    `created API key ${issued.id} for tenant ${id === tenant ? id : `${tenant} (${id})`}`,
  );
}

async function rotateKey(tenant: string, key: string, flags: RotateFlags): Promise<void> {
  const client = clientFrom(flags);
  const rotated: RotatedKey = await client.rotateKey(await tenantId(client, tenant), key, flags.grace);
  const until = shortDate(rotated.previous.expiresAt, true) ?? "it expires";
  showIssued(rotated, flags, `rotated API key ${key} → ${rotated.id}; ${key} keeps working until ${until}`);
}

/**
 * What a key is now. A rotated key still works until its (shortened)
 * expiry, so it is "rotated" until then and "expired" after.
 */
export function keyStatus(key: ApiKey, now = Date.now()): string {
  if (key.revokedAt !== null) return "revoked";
  if (key.expiresAt !== null && Date.parse(key.expiresAt) <= now) return "expired";
  if (key.replacedBy !== null) return "rotated";
  return "active";
}

const KEY_COLUMNS: Column<ApiKey>[] = [
  { header: "ID", value: (k) => k.id },
  { header: "NAME", value: (k) => k.name, maxWidth: 30 },
  { header: "SCOPES", value: (k) => k.scopes },
  { header: "STATUS", value: (k) => keyStatus(k) },
  { header: "CREATED", value: (k) => shortDate(k.createdAt) },
  { header: "EXPIRES", value: (k) => shortDate(k.expiresAt) },
];

const TENANT_KEY_COLUMNS: Column<ApiKey>[] = [
  ...KEY_COLUMNS,
  { header: "REPLACED BY", value: (k) => k.replacedBy },
];

// Admin keys are never rotated; who made one matters more.
const ADMIN_KEY_COLUMNS: Column<ApiKey>[] = [
  ...KEY_COLUMNS.filter((c) => c.header !== "SCOPES"),
  { header: "CREATED BY", value: (k) => k.createdBy },
];

function printKeys(keys: ApiKey[], flags: ConnectionFlags, kind: "tenant" | "admin"): void {
  emit(flags, {
    json: keys,
    quiet: keys.map((k) => k.id),
    table: () => {
      if (keys.length === 0) return kind === "admin" ? "no admin keys\n" : "no API keys\n";
      return renderTable(keys, kind === "admin" ? ADMIN_KEY_COLUMNS : TENANT_KEY_COLUMNS);
    },
  });
}

function keyDetails(key: ApiKey): string {
  return renderDetails([
    ["id", key.id],
    ["tenant", key.tenantId ?? "- (admin key)"],
    ["name", key.name],
    ["scopes", key.scopes],
    ["status", keyStatus(key)],
    ["created", shortDate(key.createdAt, true)],
    ["expires", shortDate(key.expiresAt, true)],
    ["revoked", shortDate(key.revokedAt, true)],
    ["replaced by", key.replacedBy],
    ["created by", key.createdBy],
  ]);
}

function showKey(key: ApiKey, flags: ConnectionFlags, done: string): void {
  emit(flags, { json: key, quiet: [key.id], table: () => `${done}\n${keyDetails(key)}` });
}

/**
 * A new key. The secret is set apart at the end, where the eye lands when
 * the command returns; `--quiet` prints only the secret, since the key id
 * is part of it and the secret is the one thing that cannot be had again.
 */
function showIssued(issued: IssuedKey, flags: ConnectionFlags, done: string): void {
  emit(flags, {
    json: issued,
    quiet: [issued.secret],
    table: () =>
      `${done}\n${keyDetails(issued)}\nsecret: ${issued.secret}\n` +
      "This secret is shown once and cannot be retrieved again: store it now (e.g. in a password manager).\n",
  });
}
