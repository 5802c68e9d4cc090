import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { AdminClientError, EXIT } from "./client.js";
import { type ConnectionFlags, clientFrom, connectionOptions, run, usageExitCodes } from "./common.js";

interface ReportFlags extends ConnectionFlags {
  output?: string;
  force?: boolean;
}

export function registerReportCommand(program: Command): void {
  usageExitCodes(
    connectionOptions(
      program
        .command("report")
        .description(
          "write a support report (versions, redacted config, fleet, alerts, events, metrics) to read before sending",
        ),
    ),
  )
    .option(
      "-o, --output <file>",
      "where to write it (- for standard output); default imgfleet-report-<time>.md",
    )
    .option("--force", "overwrite the file if it exists")
    .action(run(report));
}

async function report(flags: ReportFlags): Promise<void> {
  const text = await clientFrom(flags).report();
  if (flags.output === "-") {
    process.stdout.write(text);
    return;
  }
  const file = resolve(flags.output ?? defaultName());
  try {
    // Owner-only: it is meant to be read before anyone else sees it.
    await writeFile(file, text, { mode: 0o600, flag: flags.force ? "w" : "wx" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new AdminClientError(
      code === "EEXIST"
        ? `${file} exists; pass --force to overwrite it, or -o another file`
        : `cannot write ${file}: ${(error as Error).message}`,
      code === "EEXIST" ? EXIT.usage : EXIT.failed,
    );
  }
  if (flags.quiet) {
    process.stdout.write(`${file}\n`);
    return;
  }
  const sections = text.match(/^## /gm)?.length ?? 0;
  process.stdout.write(`wrote ${file} (${Math.ceil(Buffer.byteLength(text) / 1024)} KB, ${sections} sections)

Read it before you send it to anyone. Tenant names, API and admin keys, passwords and
secrets are replaced (tenants appear as tenant-1, tenant-2, …), and no image data is in it. Check:
  - "This node" and "Fleet": node ids, host names and addresses you may not want to share
  - "Effective configuration": host names and directory paths (URLs are cut to scheme and host)
  - "Alerts" and "Events": their messages are free text
Search it for names you consider confidential, e.g.: grep -n -i 'customer name' ${file}
`);
}

function defaultName(): string {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
  return `imgfleet-report-${stamp}.md`;
}
