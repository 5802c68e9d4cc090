import type { Logger } from "pino";
import { z } from "zod";
import { ROLES, type Role } from "../config/schema.js";
import type { KeyValue } from "../kv/key-value.js";
import { jittered, jitteredBackoffMs } from "../util/backoff.js";
import { delay } from "../util/time.js";
import { LOG_ONLY_WIRE, readWire, stamped, type WireRejections } from "../wire/wire.js";

/** What a node says about itself in discovery. */
export interface NodeInfo {
  id: string;
  roles: Role[];
  version: string;
  /** Where other nodes and the CLI reach it (http://host:port). */
  url: string;
  startedAt: number;
  /** Load when it last registered. */
  load: { inFlight: number; queueDepth: number; workersBusy: number; workers: number; rssBytes: number };
}

export interface LiveNode extends NodeInfo {
  /** When it last registered (epoch ms). */
  seenAt: number;
}

const count = z.number().finite().nonnegative();

/**
 * A registration as read from the bucket (version 1). Unknown fields are
 * tolerated and dropped: a registration only describes a node, and a field
 * this version does not know cannot change what it does with it.
 */
const NodeInfoWire = z.object({
  id: z.string().min(1),
  roles: z.array(z.enum(ROLES)),
  version: z.string(),
  url: z.string(),
  startedAt: count,
  load: z.object({ inFlight: count, queueDepth: count, workersBusy: count, workers: count, rssBytes: count }),
});
const _fits: z.ZodType<NodeInfo, z.input<typeof NodeInfoWire>> = NodeInfoWire;
void _fits;

const PREFIX = "node.";
const START_ATTEMPTS = 6;

/**
 * Service discovery over a KeyValue bucket: every node re-registers itself
 * every `refreshMs`; a node not seen for `ttlMs` is gone (the bucket's max
 * age removes it, and readers ignore it before that). Everyone finds
 * everyone here, and the API share of a tenant's rate limit is 1 / live API
 * nodes, refreshed with the registrations, never per request.
 */
export class Discovery {
  #timer: NodeJS.Timeout | undefined;
  #nodes: LiveNode[] = [];
  #failures = 0;

  constructor(
    private readonly options: {
      kv: KeyValue;
      self: () => NodeInfo;
      refreshMs: number;
      ttlMs: number;
      logger: Logger;
      /** Where a registration that fails its schema is reported (default: logged only); it is left out of the fleet. */
      wire?: WireRejections;
    },
  ) {}

  /** Registers (retrying briefly while the bucket's servers settle), then keeps registering. */
  async start(): Promise<void> {
    for (let attempt = 1; !(await this.#round()) && attempt < START_ATTEMPTS; attempt++) {
      await delay(jitteredBackoffMs(attempt, 200, 2000));
    }
    this.#schedule();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    await this.options.kv.delete(PREFIX + this.options.self().id).catch(() => {});
  }

  /** Live nodes as of the last refresh, this one included. */
  nodes(): LiveNode[] {
    return this.#nodes;
  }

  apiNodeCount(): number {
    return Math.max(1, this.#nodes.filter((n) => n.roles.includes("api")).length);
  }

  /** The internal URL of a live node, for workers reaching the API node that staged a job. */
  urlOf(nodeId: string): string | undefined {
    return this.#nodes.find((n) => n.id === nodeId)?.url;
  }

  /** Reads every live node now (the CLI's `nodes` asks through the admin API). */
  async list(): Promise<LiveNode[]> {
    const now = Date.now();
    const entries = await this.options.kv.entries(PREFIX);
    const wire = this.options.wire ?? LOG_ONLY_WIRE;
    const live: LiveNode[] = [];
    for (const e of entries.filter((e) => now - e.updatedAt < this.options.ttlMs)) {
      const info = readWire(
        NodeInfoWire,
        e.value,
        { source: "discovery", from: `KV nodes key ${e.key}` },
        wire,
      );
      if (info) live.push({ ...info, seenAt: e.updatedAt });
    }
    return live.sort((a, b) => a.id.localeCompare(b.id));
  }

  #schedule(): void {
    this.#timer = setTimeout(
      () => void this.#round().finally(() => this.#schedule()),
      jittered(this.options.refreshMs, 0.1),
    );
    this.#timer.unref();
  }

  async #round(): Promise<boolean> {
    const self = this.options.self();
    try {
      await this.options.kv.put(PREFIX + self.id, JSON.stringify(stamped(self)));
      this.#nodes = await this.list();
      this.#failures = 0;
      return true;
    } catch (error) {
      // Keep the last view: a KV outage must not make this node think it is alone.
      if (this.#failures++ % 10 === 0) {
        this.options.logger.warn(
          { err: error },
          "could not register in discovery or read the fleet (retrying); keeping the last view of the fleet",
        );
      }
      return false;
    }
  }
}
