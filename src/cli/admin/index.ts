import type { Command } from "commander";
import { registerAlertCommands } from "./alerts-commands.js";
import { registerAuditCommand } from "./audit-command.js";
import { registerFlagCommands } from "./flag-commands.js";
import { registerKeyCommands } from "./key-commands.js";
import { registerMetricsCommands } from "./metrics-commands.js";
import { registerNodesCommand } from "./nodes-command.js";
import { registerReportCommand } from "./report-command.js";
import { registerTenantCommands } from "./tenant-commands.js";
import { registerUsageCommands } from "./usage-commands.js";

/**
 * `tenants`, `keys`, `admin-keys`, `audit` and `usage`: the admin API over HTTP, so
 * they work against any node and never load the server's configuration.
 */
export function registerAdminCommands(program: Command): void {
  registerTenantCommands(program);
  registerKeyCommands(program);
  registerAuditCommand(program);
  registerNodesCommand(program);
  registerMetricsCommands(program);
  registerUsageCommands(program);
  registerFlagCommands(program);
  registerReportCommand(program);
  registerAlertCommands(program);
}
