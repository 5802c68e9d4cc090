import type { FleetProcess } from "./fleet-members.js";
import type { NodeRole } from "./fleet-plan.js";
import type { FleetRole } from "./fleet-state.js";

/*
 * The shapes of a dev fleet: what starting one takes and gives. Their own
 * module so that fleet.ts and fleet-launch.ts both use them without importing
 * each other.
 */

export interface DevFleetOptions {
  /** Holds fleet.json, logs, configs and every process's data; created if missing. */
  stateDir: string;
  /** Default 2. */
  apiNodes?: number;
  /** Default 2. */
  workerNodes?: number;
  /** Default 1. */
  controlNodes?: number;
  /** `--workers` of each node (worker processes on worker nodes). Default 1: the machines have 2 cores. */
  workersPerNode?: number;
  /**
   * How to run imgfleet, after the node executable: default `[...process.execArgv, process.argv[1]]`,
   * the running CLI itself. Tests pass `["--import", "tsx", "<repo>/src/cli/main.ts"]`.
   */
  entry?: string[];
  /** Working directory of the nodes (where `--import tsx` resolves). Default: this process's. */
  cwd?: string;
  /** Extra environment for every imgfleet node (after the fleet's own IMGFLEET_* variables). */
  env?: Record<string, string>;
  /** Extra environment per role, applied last (tests shorten intervals). */
  roleEnv?: Partial<Record<NodeRole, Record<string, string>>>;
  /** Default "info". */
  logLevel?: string;
  /** Bound on the whole start, every process ready. Default 120 s (five Node processes on two cores). */
  readyTimeoutMs?: number;
  /** Remove the data of a previous fleet in this directory first (else its database and streams are kept). */
  fresh?: boolean;
  /** Aborting stops whatever was started and rejects. */
  signal?: AbortSignal;
}

export interface DevFleet {
  readonly stateDir: string;
  /** HAProxy, in front of the API nodes. */
  readonly url: string;
  /** Printed once by the first API node on an empty database; null if it was not seen (see fleet.json). */
  readonly adminKey: string | null;
  readonly clusterSecret: string;
  readonly natsUrls: readonly string[];
  readonly databaseUrl: string;
  readonly processes: readonly FleetProcess[];
  /** A process by name: nats-1..3, postgres, api-1, worker-2, control-1, haproxy. Throws if unknown. */
  process(name: string): FleetProcess;
  byRole(role: FleetRole): FleetProcess[];
  /** Stops everything: HAProxy, then the nodes (draining), then PostgreSQL and NATS. */
  stop(): Promise<void>;
}

export interface FleetBinaries {
  nats: string;
  /** The directory holding initdb and postgres. */
  postgresBin: string;
  haproxy: string;
}
