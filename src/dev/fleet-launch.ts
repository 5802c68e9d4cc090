import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { ADMIN_PREFIX } from "../contract/paths.js";
import { delay } from "../util/time.js";
import { PostgresMember, SpawnedMember, type SpawnSpec, stopRecords } from "./fleet-members.js";
import {
  defaultEntry,
  fleetLayout,
  haproxySpec,
  type NatsPlan,
  type NodePlan,
  natsConfig,
  natsSpec,
  newClusterSecret,
  nodeSpec,
} from "./fleet-plan.js";
import { type FleetFile, type FleetProcessRecord, writeFleetFile } from "./fleet-state.js";
import type { DevFleet, DevFleetOptions, FleetBinaries } from "./fleet-types.js";
import { apiServerStates, renderHaproxyConfig } from "./haproxy-config.js";
import { startPostgresServer } from "./postgres-server.js";
import { freePorts, processStartTime, waitUntilReady } from "./processes.js";

/**
 * One start of a dev fleet: spawns in dependency order (NATS and PostgreSQL,
 * then the nodes and HAProxy), waits for each to be ready within one
 * deadline, and keeps fleet.json in step with every spawn.
 */

export const DEFAULT_READY_TIMEOUT_MS = 120_000;
/** After the API nodes are ready, how long the admin key may take to appear in a log. */
const ADMIN_KEY_WAIT_MS = 10_000;
const ADMIN_KEY_LINE = /IMGFLEET_ADMIN_KEY=(\S+)/;
/** A cheap admin GET (discovery, from memory) to see whether a node accepts the admin key. */
const ADMIN_KEY_CHECK_PATH = `${ADMIN_PREFIX}/nodes`;
/** A Unix socket path is limited to 107 bytes; without the socket, HAProxy readiness is /healthz alone. */
const MAX_SOCKET_PATH = 100;

interface Plan {
  nats: NatsPlan[];
  postgresPort: number;
  haproxyPort: number;
  nodes: NodePlan[];
}

export class Launch {
  readonly members: (SpawnedMember | PostgresMember)[] = [];
  readonly deadline: number;
  readonly readyTimeoutMs: number;
  readonly file: FleetFile;
  /** A postmaster spawned but not yet ready: recorded so an interrupted start can still be stopped. */
  #pendingPostgres: FleetProcessRecord | undefined;
  #saving: Promise<void> = Promise.resolve();

  constructor(
    readonly stateDir: string,
    readonly options: DevFleetOptions,
    previous: FleetFile | undefined,
  ) {
    this.readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.deadline = Date.now() + this.readyTimeoutMs;
    const now = new Date().toISOString();
    this.file = {
      version: 1,
      status: "starting",
      stateDir,
      launcherPid: process.pid,
      createdAt: now,
      updatedAt: now,
      url: "",
      // Kept from a previous fleet on the same database: it prints no key a second time.
      adminKey: previous?.adminKey ?? null,
      clusterSecret: previous?.clusterSecret ?? newClusterSecret(),
      natsUrls: [],
      databaseUrl: "",
      processes: [],
    };
  }

  /** Rewrites fleet.json from the members; writes are queued, each one reflecting the state at its turn. */
  save = (): Promise<void> => {
    const next = this.#saving.then(async () => {
      this.file.processes = this.records();
      await writeFleetFile(this.file);
    });
    this.#saving = next.catch(() => {});
    return next;
  };

  records(): FleetProcessRecord[] {
    const records = this.members.map((m) => m.record());
    const pending = this.#pendingPostgres;
    if (pending && !records.some((r) => r.role === "postgres")) records.push(pending);
    return records;
  }

  async run(binaries: FleetBinaries): Promise<void> {
    const plan = await this.plan();
    const { postgres, initialized } = await this.startInfrastructure(plan, binaries);
    const apiMembers = await this.startNodesAndBalancer(plan, binaries, postgres.url);
    if (initialized) {
      this.file.adminKey = await this.readAdminKey(apiMembers);
      if (this.file.adminKey) await this.waitAdminKeyAccepted(apiMembers, this.file.adminKey);
    }
    this.file.status = "running";
    await this.save();
  }

  /** Every port at once, so no two processes get the same one. */
  async plan(): Promise<Plan> {
    const counts = {
      control: this.options.controlNodes ?? 1,
      api: this.options.apiNodes ?? 2,
      worker: this.options.workerNodes ?? 2,
    };
    const ports = await freePorts(9 + 2 + counts.api + counts.worker + counts.control);
    const take = () => {
      const port = ports.shift();
      if (port === undefined) throw new Error("ran out of allocated ports");
      return port;
    };
    const nats = [1, 2, 3].map((i) => ({
      name: `nats-${i}`,
      client: take(),
      monitor: take(),
      cluster: take(),
    }));
    const plan: Plan = {
      nats,
      postgresPort: take(),
      haproxyPort: take(),
      nodes: (["control", "api", "worker"] as const).flatMap((role) =>
        Array.from({ length: counts[role] }, (_, i) => ({ name: `${role}-${i + 1}`, role, port: take() })),
      ),
    };
    this.file.natsUrls = nats.map((p) => `nats://127.0.0.1:${p.client}`);
    this.file.url = `http://127.0.0.1:${plan.haproxyPort}`;
    await this.save();
    return plan;
  }

  /** NATS ×3 and PostgreSQL, side by side; JetStream ready means a meta leader every server knows. */
  async startInfrastructure(plan: Plan, binaries: FleetBinaries) {
    const natsMembers = await Promise.all(plan.nats.map((p) => this.spawnNats(p, plan.nats, binaries.nats)));
    const started = await this.startPostgres(plan.postgresPort);
    this.file.databaseUrl = started.postgres.url;
    await Promise.all(natsMembers.map((m) => m.waitReady(this.deadline, this.options.signal)));
    await this.waitForNatsLeader(natsMembers);
    return started;
  }

  /** The imgfleet nodes and HAProxy; resolves with the API nodes once all are ready. */
  async startNodesAndBalancer(plan: Plan, binaries: FleetBinaries, databaseUrl: string) {
    const { options } = this;
    const layout = fleetLayout(this.stateDir);
    const nodes = await Promise.all(
      plan.nodes.map((node) =>
        this.spawn(
          nodeSpec(node, {
            entry: options.entry ?? defaultEntry(),
            cwd: options.cwd,
            nodesDir: layout.nodes,
            logs: layout.logs,
            workersPerNode: options.workersPerNode ?? 1,
            natsUrls: this.file.natsUrls,
            databaseUrl,
            clusterSecret: this.file.clusterSecret,
            logLevel: options.logLevel ?? "info",
            env: options.env ?? {},
            roleEnv: options.roleEnv ?? {},
          }),
        ),
      ),
    );
    const apiMembers = nodes.filter((m) => m.role === "api");
    const backends = apiMembers.map((m) => ({ name: m.name, address: `127.0.0.1:${m.ports.http}` }));
    const statsSocket = layout.haproxySocket.length <= MAX_SOCKET_PATH ? layout.haproxySocket : undefined;
    const bind = `127.0.0.1:${plan.haproxyPort}`;
    await writeFile(
      layout.haproxyConfig,
      renderHaproxyConfig({ target: "dev", bind, backends, statsSocket }),
    );
    const haproxy = await this.spawn(
      haproxySpec(binaries.haproxy, plan.haproxyPort, layout.haproxyConfig, layout.logs),
    );
    await Promise.all(nodes.map((m) => m.waitReady(this.deadline, options.signal)));
    // Ready when it forwards /healthz and counts every API node up (else the first
    // requests would all go to whichever node its checks saw first).
    await haproxy.waitReady(this.deadline, options.signal, async () => {
      if (!(await haproxy.ready())) return false;
      if (!statsSocket) return true;
      const states = await apiServerStates(statsSocket);
      return backends.every((b) => states.get(b.name) === "UP");
    });
    return apiMembers;
  }

  async spawn(spec: SpawnSpec): Promise<SpawnedMember> {
    this.options.signal?.throwIfAborted();
    const member = new SpawnedMember(spec, this.save, this.readyTimeoutMs);
    this.members.push(member);
    await member.spawn();
    return member;
  }

  async spawnNats(plan: NatsPlan, all: NatsPlan[], binary: string): Promise<SpawnedMember> {
    const layout = fleetLayout(this.stateDir);
    const storeDir = path.join(layout.nats, plan.name);
    const configFile = path.join(layout.nats, `${plan.name}.conf`);
    await mkdir(storeDir, { recursive: true });
    await writeFile(configFile, natsConfig(plan, all, storeDir));
    return this.spawn(natsSpec(plan, binary, configFile, layout.logs));
  }

  async startPostgres(port: number): Promise<{ postgres: PostgresMember; initialized: boolean }> {
    this.options.signal?.throwIfAborted();
    const layout = fleetLayout(this.stateDir);
    const logFile = path.join(layout.logs, "postgres.log");
    const server = await startPostgresServer({
      dir: layout.postgres,
      detached: true,
      logFile,
      port,
      startupTimeoutMs: Math.max(1_000, this.deadline - Date.now()),
      onSpawn: (pid) => {
        const startTime = processStartTime(pid);
        this.#pendingPostgres = {
          ...{ name: "postgres", role: "postgres", pid, ports: { postgres: port }, url: "", logFile },
          ...(startTime !== undefined ? { startTime } : {}),
        };
        void this.save().catch(() => {});
      },
    });
    const postgres = new PostgresMember(server, logFile, this.save);
    this.members.push(postgres);
    this.#pendingPostgres = undefined;
    await this.save();
    return { postgres, initialized: server.initialized };
  }

  /** JetStream takes requests once the cluster's meta group has a leader that every server knows. */
  async waitForNatsLeader(servers: SpawnedMember[]): Promise<void> {
    const first = servers[0];
    if (!first) return;
    const leaderOf = async (m: SpawnedMember) => {
      const response = await fetch(`http://127.0.0.1:${m.ports.monitor}/jsz`, {
        signal: AbortSignal.timeout(1000),
      });
      const body = (await response.json()) as { meta_cluster?: { leader?: string } };
      return body.meta_cluster?.leader ?? "";
    };
    await waitUntilReady({
      name: "the NATS cluster (JetStream meta leader)",
      record: first.record(),
      logFile: first.logFile,
      probe: async () => (await Promise.all(servers.map(leaderOf))).every(Boolean),
      deadline: this.deadline,
      signal: this.options.signal,
    });
  }

  /** The first start on an empty database prints the key on one API node's stderr, once. */
  async readAdminKey(apiMembers: SpawnedMember[]): Promise<string | null> {
    const until = Math.min(Date.now() + ADMIN_KEY_WAIT_MS, this.deadline);
    for (;;) {
      for (const member of apiMembers) {
        const log = await readFile(member.logFile).catch(() => Buffer.alloc(0));
        // Only what this process wrote: an older start's banner may be earlier in the file.
        const key = ADMIN_KEY_LINE.exec(log.subarray(member.logOffset).toString("utf8"))?.[1];
        if (key) return key;
      }
      if (Date.now() >= until) return null;
      await delay(100);
    }
  }

  /**
   * The new key reaches the other API nodes through the outbox and the identity
   * bucket, a second or so after it was created: `up` prints it only once every
   * API node accepts it, so the printed commands work at once.
   */
  async waitAdminKeyAccepted(apiMembers: SpawnedMember[], adminKey: string): Promise<void> {
    const accepts = (member: SpawnedMember) => async () => {
      const response = await fetch(`${member.url}${ADMIN_KEY_CHECK_PATH}`, {
        headers: { authorization: `Bearer ${adminKey}` },
        signal: AbortSignal.timeout(1000),
      });
      await response.arrayBuffer();
      return response.ok;
    };
    await Promise.all(
      apiMembers.map((member) =>
        waitUntilReady({
          name: `${member.name} (accepting the admin key it was given)`,
          record: member.record(),
          logFile: member.logFile,
          deadline: this.deadline,
          signal: this.options.signal,
          probe: accepts(member),
        }),
      ),
    );
  }

  /** After a failed or interrupted start: stop everything started, and say so in fleet.json. */
  async abandon(): Promise<void> {
    await stopRecords(this.records(), { fast: true });
    this.file.status = "failed";
    await this.save().catch(() => {});
  }

  handle(): DevFleet {
    const members = this.members;
    const { file } = this;
    let stopping: Promise<void> | undefined;
    return {
      stateDir: this.stateDir,
      url: file.url,
      adminKey: file.adminKey,
      clusterSecret: file.clusterSecret,
      natsUrls: file.natsUrls,
      databaseUrl: file.databaseUrl,
      processes: members,
      process: (name) => {
        const member = members.find((m) => m.name === name);
        if (member) return member;
        throw new Error(`no process ${name} in this fleet (${members.map((m) => m.name).join(", ")})`);
      },
      byRole: (role) => members.filter((m) => m.role === role),
      stop: () => {
        stopping ??= (async () => {
          await stopRecords(members.map((m) => m.record()));
          file.status = "stopped";
          await this.save();
        })();
        return stopping;
      },
    };
  }
}
