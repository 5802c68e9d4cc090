import { createNode } from "../app/node.js";
import { loadConfig } from "../config/load.js";
import { bootstrapBanner } from "./bootstrap-banner.js";
import { flagsToOverrides, type ServerFlags } from "./flags.js";

/** `imgfleet start`: every role in this process and its workers (embedded mode). */
export async function startCommand(flags: ServerFlags): Promise<void> {
  const config = loadConfig({ file: flags.config, overrides: flagsToOverrides(flags) });
  const node = await createNode(config);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      node.logger.warn(`second ${signal}: exiting now without waiting for in-flight requests`);
      process.exit(1);
    }
    stopping = true;
    node.logger.info(
      { signal, graceMs: config.server.shutdownGraceMs },
      `${signal} received: draining in-flight requests`,
    );
    const finished = await node.stop();
    node.logger.info({ finished }, finished ? "stopped cleanly" : "stopped after the grace period");
    process.exit(finished ? 0 : 1);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  const url = await node.listen();
  const issued = node.identity.bootstrapKey;
  if (issued) {
    process.stderr.write(bootstrapBanner(issued, url));
    node.logger.warn(
      { keyId: issued.key.id },
      "first start: created the bootstrap admin key and printed it once on standard error; it is not logged and cannot be shown again",
    );
  }
}
