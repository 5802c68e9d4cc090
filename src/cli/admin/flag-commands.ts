import { type Command, Option } from "commander";
import type { FlagSettingsInput, FlagView } from "./client.js";
import {
  type ConnectionFlags,
  clientFrom,
  connectionOptions,
  emit,
  number,
  run,
  UsageError,
  usageExitCodes,
} from "./common.js";
import { type Column, renderDetails, renderTable, shortDate } from "./table.js";
import { tenantId } from "./tenant-ref.js";

interface SetFlags extends ConnectionFlags {
  percentage?: number;
  default?: "on" | "off";
  description?: string;
  tenant?: string;
  on?: boolean;
  off?: boolean;
}

interface UnsetFlags extends ConnectionFlags {
  tenant?: string;
}

interface ShowFlags extends ConnectionFlags {
  tenant?: string;
}

export function registerFlagCommands(program: Command): void {
  const flags = usageExitCodes(
    program
      .command("flags")
      .description("feature flags: per-tenant and percentage rollouts, changed without a restart"),
  );

  connectionOptions(flags.command("list").description("list every flag with its rollout")).action(
    run(listFlags),
  );

  connectionOptions(
    flags
      .command("show")
      .description("show one flag, or with --tenant how the answering node evaluates it")
      .argument("<name>", "the flag, e.g. avif-auto"),
  )
    .option("--tenant <tenant>", "evaluate the flag for this tenant on the node that answers")
    .action(run(showFlag));

  connectionOptions(
    flags
      .command("set")
      .description("change a flag's rollout, default or description, or one tenant's override")
      .argument("<name>", "the flag, e.g. avif-auto"),
  )
    .option("--percentage <n>", "turn it on for this share of tenants (0-100, stable per tenant)", number)
    .addOption(new Option("--default <value>", "the value outside the rollout").choices(["on", "off"]))
    .option("--description <text>", "what the flag switches")
    .option("--tenant <tenant>", "set an override for this tenant (with --on or --off)")
    .addOption(new Option("--on", "the tenant gets the flag on").conflicts("off"))
    .addOption(new Option("--off", "the tenant gets the flag off"))
    .action(run(setFlag));

  connectionOptions(
    flags
      .command("unset")
      .description("remove a flag's stored settings (back to its built-in default), or one tenant's override")
      .argument("<name>", "the flag, e.g. avif-auto"),
  )
    .option("--tenant <tenant>", "remove only this tenant's override")
    .action(run(unsetFlag));
}

async function listFlags(flags: ConnectionFlags): Promise<void> {
  const { items } = await clientFrom(flags).flags();
  emit(flags, {
    json: items,
    quiet: items.map((f) => f.name),
    table: () => (items.length === 0 ? "no flags\n" : renderTable(items, FLAG_COLUMNS)),
  });
}

async function showFlag(name: string, flags: ShowFlags): Promise<void> {
  const client = clientFrom(flags);
  if (flags.tenant !== undefined) {
    const e = await client.evaluateFlag(name, await tenantId(client, flags.tenant));
    emit(flags, {
      json: e,
      quiet: [e.value ? "on" : "off"],
      table: () =>
        `${e.flag} is ${e.value ? "on" : "off"} for ${e.tenant} on node ${e.node} (${REASONS[e.reason]})\n`,
    });
    return;
  }
  printFlag(flags, await client.flag(name));
}

async function setFlag(name: string, flags: SetFlags): Promise<void> {
  const settings: FlagSettingsInput = {};
  if (flags.percentage !== undefined) settings.percentage = flags.percentage;
  if (flags.default !== undefined) settings.default = flags.default === "on";
  if (flags.description !== undefined) settings.description = flags.description;
  const hasSettings = Object.keys(settings).length > 0;
  const override = flags.on ? true : flags.off ? false : undefined;
  if (flags.tenant !== undefined && override === undefined) {
    throw new UsageError("--tenant needs --on or --off: say which value that tenant gets");
  }
  if (flags.tenant === undefined && override !== undefined) {
    throw new UsageError("--on and --off set one tenant's override: add --tenant <id> (or use --default)");
  }
  if (flags.tenant !== undefined && hasSettings) {
    throw new UsageError(
      "set a tenant's override and the flag's rollout in two commands, so each is one audited change",
    );
  }
  if (flags.tenant === undefined && !hasSettings) {
    throw new UsageError(
      "say what to change: --percentage, --default, --description, or --tenant with --on/--off",
    );
  }
  const client = clientFrom(flags);
  const flag =
    flags.tenant !== undefined && override !== undefined
      ? await client.setFlagTenant(name, await tenantId(client, flags.tenant), override)
      : await client.setFlag(name, settings);
  printFlag(flags, flag);
}

async function unsetFlag(name: string, flags: UnsetFlags): Promise<void> {
  const client = clientFrom(flags);
  const flag =
    flags.tenant !== undefined
      ? await client.unsetFlagTenant(name, await tenantId(client, flags.tenant))
      : await client.deleteFlag(name);
  printFlag(flags, flag);
}

function printFlag(flags: ConnectionFlags, flag: FlagView): void {
  if (!flag.known) {
    process.stderr.write(
      `warning: the node that answered does not know a flag named ${flag.name} (a typo?); its settings are stored, but nothing reads them\n`,
    );
  }
  emit(flags, { json: flag, quiet: [flag.name], table: () => renderDetails(details(flag)) });
}

const REASONS = {
  tenant: "its own override",
  percentage: "inside the percentage rollout",
  default: "the flag's default",
} as const;

function overrides(flag: FlagView): string {
  const values = Object.values(flag.tenants);
  const on = values.filter(Boolean).length;
  return values.length === 0 ? "none" : `${on} on, ${values.length - on} off`;
}

function details(flag: FlagView) {
  const tenants = Object.entries(flag.tenants).map(([id, v]) => `${id}=${v ? "on" : "off"}`);
  return [
    ["flag", flag.name],
    ["description", flag.description],
    ["default", flag.default ? "on" : "off"],
    ["rollout", `${flag.percentage}% of tenants`],
    ["overrides", tenants.length > 0 ? tenants : "none"],
    ["stored", flag.stored ? "yes" : "no (built-in default)"],
    ["updated", shortDate(flag.updatedAt, true)],
    ["by", flag.updatedBy],
  ] as const;
}

const FLAG_COLUMNS: Column<FlagView>[] = [
  { header: "FLAG", value: (f) => f.name },
  { header: "DEFAULT", value: (f) => (f.default ? "on" : "off") },
  { header: "ROLLOUT", value: (f) => `${f.percentage}%`, align: "right" },
  { header: "OVERRIDES", value: overrides },
  { header: "UPDATED", value: (f) => shortDate(f.updatedAt) },
  { header: "KNOWN", value: (f) => (f.known ? "yes" : "no") },
  { header: "DESCRIPTION", value: (f) => f.description, maxWidth: 60 },
];
