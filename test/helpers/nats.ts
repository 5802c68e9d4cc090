import { onTestFinished } from "vitest";
import {
  findNatsServer,
  NATS_MISSING,
  type NatsCluster,
  startNatsCluster,
} from "../../src/dev/nats-cluster.js";
import { isCI } from "./ci.js";

/**
 * Real nats-server processes for the fleet suites. Outside CI a missing
 * binary skips those suites with a loud line; under CI=true it is a failure.
 */
export const hasNats = findNatsServer() !== undefined;
if (!hasNats) {
  if (isCI()) throw new Error(`${NATS_MISSING} (required in CI)`);
  console.warn(`\n*** SKIPPED: NATS suites — ${NATS_MISSING} ***\n`);
}

/** One JetStream server (size 1) or a Raft cluster of three (size 3), stopped when the test ends. */
export async function natsForTest(size: 1 | 3 = 1): Promise<NatsCluster> {
  const cluster = await startNatsCluster({ size });
  onTestFinished(() => cluster.stop());
  return cluster;
}

/** For a shared server in beforeAll: returns the cluster and its stop for the hook's cleanup. */
export async function natsForSuite(size: 1 | 3 = 1): Promise<NatsCluster> {
  return startNatsCluster({ size });
}
