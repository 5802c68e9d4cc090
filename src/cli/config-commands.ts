import { loadConfig } from "../config/load.js";
import { redact } from "../config/redact.js";
import { flagsToOverrides, type ServerFlags } from "./flags.js";

/** `imgfleet config check [file]`: validate without starting; exit 0 when valid. */
export function configCheckCommand(file: string | undefined, flags: ServerFlags): void {
  loadConfig({ file: file ?? flags.config, overrides: flagsToOverrides(flags) });
  process.stdout.write(
    `configuration is valid${(file ?? flags.config) ? ` (${file ?? flags.config})` : ""}\n`,
  );
}

/** `imgfleet config print`: the effective configuration, secrets redacted. */
export function configPrintCommand(flags: ServerFlags): void {
  const config = loadConfig({ file: flags.config, overrides: flagsToOverrides(flags) });
  process.stdout.write(`${JSON.stringify(redact(config), null, 2)}\n`);
}
