import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { ConfigError } from "../config/config-error.js";
import { registerAdminCommands } from "./admin/index.js";
import { configCheckCommand, configPrintCommand } from "./config-commands.js";
import type { ServerFlags } from "./flags.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

function serverFlags(command: Command): Command {
  return command
    .option("-c, --config <file>", "YAML or JSON config file (also IMGFLEET_CONFIG)")
    .option("--host <host>", "address to listen on (server.host)")
    .option("-p, --port <port>", "port to listen on, 0 for any free one (server.port)")
    .option("--data-dir <dir>", "where embedded state is kept (dataDir)")
    .option("--workers <n>", "worker processes (workers.count)")
    .option("--role <roles>", "roles of this node, comma-separated: api, worker, control, or all (roles)")
    .addOption(
      new Option("--log-level <level>", "log level (log.level)").choices([
        "fatal",
        "error",
        "warn",
        "info",
        "debug",
        "trace",
        "silent",
      ]),
    );
}

const program = new Command()
  .name("imgfleet")
  .description("Multi-tenant image resizing service")
  .version(pkg.version)
  .showHelpAfterError();

serverFlags(
  program.command("start").description("start a node (embedded mode: every role, no external services)"),
).action(async (flags: ServerFlags) => {
  // Loaded on demand: `config check` stays quick and never loads the server.
  const { startCommand } = await import("./start.js");
  await startCommand(flags);
});

const config = program.command("config").description("inspect the configuration");
serverFlags(
  config.command("check").description("validate a configuration without starting").argument("[file]"),
).action((file: string | undefined, flags: ServerFlags) => configCheckCommand(file, flags));
serverFlags(
  config.command("print").description("print the effective configuration, secrets redacted"),
).action((flags: ServerFlags) => configPrintCommand(flags));

registerAdminCommands(program);
await import("./dev-commands.js").then(({ registerDevCommands }) => registerDevCommands(program));

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`imgfleet: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `imgfleet: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
