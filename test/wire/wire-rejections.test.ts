import { randomBytes, randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import Fastify, { type FastifyRequest } from "fastify";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { z } from "zod";
import { internalRoutes } from "../../src/api/internal/data-path-routes.js";
import type { NatsCluster } from "../../src/dev/nats-cluster.js";
import { Discovery, type NodeInfo } from "../../src/fleet/discovery.js";
import { leaseHolder } from "../../src/fleet/lease.js";
import { IdentityCache } from "../../src/identity/identity-cache.js";
import { encodePublishedValue } from "../../src/identity/identity-kv.js";
import { KeyAuthenticator } from "../../src/identity/key-authenticator.js";
import type { KeyRecord } from "../../src/identity/model.js";
import { TenantLimiter } from "../../src/identity/tenant-limiter.js";
import { NatsKeyValue } from "../../src/kv/nats-kv.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { JetStreamJobQueue } from "../../src/queue/jetstream-queue.js";
import { SESSION_COOKIE } from "../../src/session/cookies.js";
import { ConsoleSessions, storageKey } from "../../src/session/sessions.js";
import { HEADERS, outcomeHeader, resultPath, signRequest } from "../../src/staging/data-path-protocol.js";
import { PendingResults } from "../../src/staging/pending-results.js";
import { StagingTable } from "../../src/staging/staging-table.js";
import { JetStreamUsageLog } from "../../src/usage/jetstream-usage-log.js";
import type { UsageBatch } from "../../src/usage/model.js";
import { checkWire, WireRejections } from "../../src/wire/wire.js";
import { FromWorkerWire } from "../../src/workers/protocol.js";
import { hasNats, natsForSuite } from "../helpers/nats.js";
import { startNode } from "../helpers/node.js";
import { message } from "../queue/job-queue.contract.js";
import { batchOf } from "../usage/usage-log.contract.js";

/** A node's reporter on its own registry, with the log lines it wrote. */
function reporter() {
  const metrics = createMetrics();
  const lines: string[] = [];
  const wire = new WireRejections({ error: (_obj, msg) => lines.push(msg) }, metrics.wireRejected);
  const counted = async (source: string, reason: string): Promise<number> => {
    const { values } = await metrics.wireRejected.get();
    return values.find((v) => v.labels.source === source && v.labels.reason === reason)?.value ?? 0;
  };
  return { wire, lines, counted, metrics };
}

const tag = () => randomUUID().replaceAll("-", "").slice(0, 12);
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** A two-field message, tolerant or strict, to show what each accepts. */
const loosePair = z.object({ a: z.number(), b: z.string() });
const strictPair = z.strictObject({ a: z.number(), b: z.string() });

describe("the version rule", () => {
  const schema = (strict: boolean) => (raw: string, at: { source: "job"; from: string }) =>
    checkWire(strict ? strictPair : loosePair, raw, at);
  it("reads v absent as version 1, refuses any other v, and drops unknown fields only where tolerated", () => {
    const at = { source: "job" as const, from: "test" };
    expect(schema(false)(JSON.stringify({ a: 1, b: "x" }), at)).toEqual({
      ok: true,
      value: { a: 1, b: "x" },
    });
    expect(schema(false)(JSON.stringify({ v: 1, a: 1, b: "x", later: true }), at)).toEqual({
      ok: true,
      value: { a: 1, b: "x" },
    });
    expect(schema(true)(JSON.stringify({ v: 1, a: 1, b: "x", later: true }), at)).toMatchObject({
      ok: false,
      rejection: { reason: "invalid", version: "1" },
    });
    expect(schema(false)(JSON.stringify({ v: 2, a: 1, b: "x" }), at)).toMatchObject({
      ok: false,
      rejection: { reason: "unknown-version", version: "2", source: "job", from: "test" },
    });
    expect(schema(false)("{not json", at)).toMatchObject({ ok: false, rejection: { reason: "unreadable" } });
    expect(schema(false)("[1,2]", at)).toMatchObject({ ok: false, rejection: { reason: "unreadable" } });
  });

  it("counts every refusal but logs the same one from the same place once a minute", async () => {
    const { wire, lines, counted } = reporter();
    const rejection = {
      source: "discovery" as const,
      from: "KV nodes key node.x",
      version: "2",
      reason: "unknown-version" as const,
      detail: "d",
    };
    for (let i = 0; i < 5; i++) wire.reject(rejection);
    expect(await counted("discovery", "unknown-version")).toBe(5);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/discovery message from KV nodes key node\.x \(version 2, unknown-version\)/);
  });
});

describe("on a running node", () => {
  it("a refused identity value shows in /metrics as imgfleet_wire_rejected_total and locks its key out", async () => {
    const n = await startNode();
    const kv = n.node.adapters.identityKv;
    const [keyEntry] = await kv.entries("key.");
    const entry = keyEntry as NonNullable<typeof keyEntry>;
    await kv.put(entry.key, JSON.stringify({ ...JSON.parse(entry.value), v: 2 }));
    await expect
      .poll(
        () => n.metric("imgfleet_wire_rejected_total", { source: "identity", reason: "unknown-version" }),
        {
          timeout: 10_000,
        },
      )
      .toBe(1);
    expect(n.node.identity.cache.key(entry.key.slice("key.".length))).toBeUndefined();
  });
});

describe("the worker process's frames", () => {
  const at = { source: "worker" as const, from: "worker process 1" };
  it("takes a well-formed done frame and refuses one out of protocol, strictly", () => {
    const done = { kind: "done", ok: true, jobId: "j", processMs: 3, cpuMs: 2, rssBytes: 9 };
    const info = { format: "webp", width: 4, height: 3, bytes: 10, pages: 1 };
    expect(checkWire(FromWorkerWire, JSON.stringify({ ...done, info }), at).ok).toBe(true);
    const refused = [
      { ...done, info, cpuMs: -1 },
      { ...done, info, extra: 1 },
      { ...done, ok: false, problem: { code: "no-such-code", detail: "x" } },
      { kind: "started" },
    ];
    for (const frame of refused) {
      expect(checkWire(FromWorkerWire, JSON.stringify(frame), at)).toMatchObject({
        ok: false,
        rejection: { source: "worker", reason: "invalid" },
      });
    }
    expect(checkWire(FromWorkerWire, '{"kind":"done",', at)).toMatchObject({
      ok: false,
      rejection: { reason: "unreadable" },
    });
  });
});

describe("the data-path outcome between nodes", () => {
  it("answers 400 to an outcome of an unknown version or shape, reporting the peer, and settles a valid one", async () => {
    const { wire, lines, counted } = reporter();
    const secret = randomBytes(24).toString("hex");
    const pending = new PendingResults();
    const app = Fastify();
    await app.register(async (scope) =>
      internalRoutes(scope, { staging: new StagingTable(1024), pending, clusterSecret: secret, wire }),
    );
    await app.listen({ host: "127.0.0.1", port: 0 });
    onTestFinished(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const post = async (jobId: string, header: string) => {
      const path = resultPath(jobId);
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: signRequest(secret, { method: "POST", path, headers: { [HEADERS.outcome]: header } }),
      });
      return res.status;
    };
    const timings = { queueMs: 1, fetchMs: 1, processMs: 5, cpuMs: 4 };
    const meta = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    expect(
      await post("j1", meta({ v: 2, ok: false, problem: { code: "internal", detail: "x" }, timings })),
    ).toBe(400);
    expect(await post("j2", meta({ v: 1, ok: true, timings }))).toBe(400);
    expect(
      await post("j3", meta({ ok: false, problem: { code: "no-such-code", detail: "x" }, timings })),
    ).toBe(400);
    expect(await counted("data-path-outcome", "unknown-version")).toBe(1);
    expect(await counted("data-path-outcome", "invalid")).toBe(2);
    expect(lines[0]).toMatch(/data-path-outcome message from peer 127\.0\.0\.1 \(job j1\) \(version 2/);
    const waiting = pending.wait("j4", new AbortController().signal);
    const problem = { code: "corrupt-image" as const, detail: "truncated" };
    expect(await post("j4", outcomeHeader({ ok: false, problem, timings }))).toBe(204);
    expect(await waiting).toEqual({ ok: false, problem, timings });
  });
});

describe.skipIf(!hasNats)("messages read from NATS (a real nats-server)", () => {
  let nats: NatsCluster;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await natsForSuite(1);
    nc = await connect({ servers: nats.urls });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const bucket = async (name: string) => {
    const kv = await NatsKeyValue.open(nc, {
      bucket: `${name}-${tag()}`,
      maxAgeMs: 0,
      maxEntries: 100,
      maxValueBytes: 16_384,
      replicas: 1,
    });
    onTestFinished(() => kv.close());
    return kv;
  };

  it("job messages: terminates an unreadable or unknown-version job at once, counts it, and delivers the next", async () => {
    const { wire, lines, counted } = reporter();
    const id = tag();
    const o = { stream: `JOBS_${id}`, subject: `jobs.${id}`, durable: "workers" };
    const queue = await JetStreamJobQueue.open(nc, {
      ...o,
      capacity: 8,
      maxAttempts: 3,
      replicas: 1,
      ackWaitMs: 30_000,
      logger: { warn: () => {}, info: () => {} },
      wire,
    });
    onTestFinished(() => queue.close());
    const js = (await jetstreamManager(nc)).jetstream();
    await js.publish(o.subject, encode({ ...message(), v: 2 }));
    await js.publish(o.subject, new TextEncoder().encode("not json"));
    await js.publish(o.subject, encode({ ...message(), spec: { ...message().spec, watermark: "acme" } }));
    const good = message();
    await queue.enqueue(good);
    const delivery = await queue.pull(AbortSignal.timeout(20_000));
    expect(delivery?.message).toEqual(good);
    await delivery?.ack();
    expect(await counted("job", "unknown-version")).toBe(1);
    expect(await counted("job", "unreadable")).toBe(1);
    expect(await counted("job", "invalid")).toBe(1);
    expect(lines.join("\n")).toMatch(
      new RegExp(`job message from ${o.subject} \\(stream ${o.stream}, seq 1\\) \\(version 2`),
    );
    // Terminated, not waiting for a redelivery: the work-queue stream is empty.
    const jsm = await jetstreamManager(nc);
    await expect
      .poll(async () => (await jsm.streams.info(o.stream)).state.messages, { timeout: 10_000 })
      .toBe(0);
  });

  it("usage batches: terminates a malformed or newer batch without handing it to the aggregator, counts it", async () => {
    const { wire, counted } = reporter();
    const id = tag();
    const o = { stream: `USAGE_${id}`, subject: `usage.${id}` };
    const log = await JetStreamUsageLog.open(nc, { ...o, capacity: 10, replicas: 1, wire });
    onTestFinished(() => log.close());
    const js = (await jetstreamManager(nc)).jetstream();
    const newer = batchOf(1);
    await js.publish(o.subject, encode({ ...newer, v: 2 }), { msgID: "newer" });
    const unknownCounter = batchOf(1);
    const group = { ...(unknownCounter.groups[0] as object), gpuMs: 7 };
    await js.publish(o.subject, encode({ ...unknownCounter, groups: [group] }), { msgID: "gpu" });
    const noCpu = batchOf(1);
    const { cpuMs: _dropped, ...record } = noCpu.records[0] as UsageBatch["records"][number];
    await js.publish(o.subject, encode({ ...noCpu, records: [record] }), { msgID: "nocpu" });
    const good = batchOf(2);
    await log.publish(good);
    const seen: UsageBatch[] = [];
    const consumer = log.consume(async (b) => void seen.push(b));
    onTestFinished(() => consumer.stop());
    await expect.poll(() => seen.length, { timeout: 15_000 }).toBe(1);
    expect(seen[0]).toEqual(good);
    expect(await counted("usage-batch", "unknown-version")).toBe(1);
    expect(await counted("usage-batch", "invalid")).toBe(2);
    const jsm = await jetstreamManager(nc);
    await expect
      .poll(async () => (await jsm.streams.info(o.stream)).state.messages, { timeout: 10_000 })
      .toBe(0);
  });

  it("identity values: a refused key or tenant is forgotten by the data plane (fail closed) and counted", async () => {
    const { wire, lines, counted, metrics } = reporter();
    const kv = await bucket("identity");
    const key: KeyRecord = {
      id: "key_a",
      tenantId: "ten_a",
      secretSha256: "0".repeat(64),
      scopes: ["resize"],
      expiresAt: null,
      revokedAt: null,
    };
    await kv.put("key.key_a", encodePublishedValue({ kind: "key", record: key, committedAt: null }));
    await kv.put(
      "key.key_b",
      encodePublishedValue({ kind: "key", record: { ...key, id: "key_b" }, committedAt: null }),
    );
    const cache = new IdentityCache(kv, metrics.identity, wire);
    await cache.start();
    onTestFinished(() => cache.stop());
    expect(cache.key("key_a")).toEqual(key);
    // A newer publisher revokes key_a in a shape this node cannot read, and adds a restriction to key_b.
    await kv.put(
      "key.key_a",
      JSON.stringify({ v: 2, kind: "key", record: { ...key, revokedAt: 1 }, committedAt: 1 }),
    );
    await kv.put(
      "key.key_b",
      JSON.stringify({
        v: 1,
        kind: "key",
        record: { ...key, id: "key_b", allowedIps: ["10.0.0.0/8"] },
        committedAt: 1,
      }),
    );
    await kv.put("tenant.ten_x", JSON.stringify({ kind: "key", record: key, committedAt: null }));
    await expect
      .poll(() => [cache.key("key_a"), cache.key("key_b")], { timeout: 10_000 })
      .toEqual([undefined, undefined]);
    await expect.poll(() => counted("identity", "invalid"), { timeout: 10_000 }).toBe(2);
    expect(await counted("identity", "unknown-version")).toBe(1);
    expect(lines.join("\n")).toMatch(
      /identity message from KV identity key key\.key_a \(version 2, unknown-version\)/,
    );
  });

  it("discovery: a registration that does not fit is left out of the fleet and counted", async () => {
    const { wire, counted } = reporter();
    const kv = await bucket("nodes");
    const self: NodeInfo = {
      id: "api-1",
      roles: ["api"],
      version: "0.1.0",
      url: "http://127.0.0.1:1",
      startedAt: Date.now(),
      load: { inFlight: 0, queueDepth: 0, workersBusy: 0, workers: 0, rssBytes: 1 },
    };
    await kv.put("node.api-2", JSON.stringify({ ...self, id: "api-2", roles: ["api", "gateway"] }));
    await kv.put("node.api-3", JSON.stringify({ ...self, id: "api-3", v: 7 }));
    // A newer node's extra field is only description: tolerated.
    await kv.put("node.api-4", JSON.stringify({ ...self, id: "api-4", v: 1, zone: "eu-1" }));
    const discovery = new Discovery({
      kv,
      self: () => self,
      refreshMs: 60_000,
      ttlMs: 60_000,
      logger: { warn: () => {} } as never,
      wire,
    });
    await discovery.start();
    onTestFinished(() => discovery.stop());
    expect(discovery.nodes().map((n) => n.id)).toEqual(["api-1", "api-4"]);
    expect(await counted("discovery", "invalid")).toBe(1);
    expect(await counted("discovery", "unknown-version")).toBe(1);
  });

  it("leases: a lease value that does not fit names no holder and is counted", async () => {
    const { wire, counted } = reporter();
    const kv = await bucket("leases");
    await kv.put("lease.a", JSON.stringify({ v: 1, holder: "node-1", since: 5 }));
    await kv.put("lease.b", JSON.stringify({ v: 3, holder: "node-1", since: 5 }));
    await kv.put("lease.c", JSON.stringify({ holder: 42 }));
    const holderOf = async (key: string) => leaseHolder(key, (await kv.get(key)) as string, wire);
    expect(await holderOf("lease.a")).toBe("node-1");
    expect(await holderOf("lease.b")).toBeNull();
    expect(await holderOf("lease.c")).toBeNull();
    expect(await counted("lease", "unknown-version")).toBe(1);
    expect(await counted("lease", "invalid")).toBe(1);
  });

  it("sessions: a session value that does not fit ends that session (401 session-expired) and is counted", async () => {
    const { wire, counted, metrics } = reporter();
    const kv = await bucket("sessions");
    const cache = new IdentityCache(await bucket("identity"), metrics.identity);
    const sessions = new ConsoleSessions({
      kv,
      settings: { idleTimeoutMs: 60_000, sessionLifetimeMs: 3_600_000 },
      keys: new KeyAuthenticator(cache, new TenantLimiter()),
      cache,
      wire,
    });
    const now = Date.now();
    const record = {
      keyId: "key_admin",
      csrf: randomBytes(32).toString("base64url"),
      createdAt: now,
      lastSeenAt: now,
    };
    const [newer, bound] = [randomBytes(32).toString("base64url"), randomBytes(32).toString("base64url")];
    await kv.put(storageKey(newer), JSON.stringify({ ...record, v: 2 }));
    await kv.put(storageKey(bound), JSON.stringify({ ...record, v: 1, boundToIp: "10.1.2.3" }));
    const request = (id: string) =>
      ({
        headers: { cookie: `${SESSION_COOKIE}=${id}` },
        method: "GET",
        protocol: "http",
        ip: "127.0.0.1",
      }) as unknown as FastifyRequest;
    for (const id of [newer, bound]) {
      await expect(sessions.current(request(id))).rejects.toMatchObject({ code: "session-expired" });
    }
    expect(await counted("session", "unknown-version")).toBe(1);
    expect(await counted("session", "invalid")).toBe(1);
  });
});
