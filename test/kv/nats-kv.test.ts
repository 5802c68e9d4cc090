import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import type { NatsCluster } from "../../src/dev/nats-cluster.js";
import type { KvChange } from "../../src/kv/key-value.js";
import { NatsKeyValue } from "../../src/kv/nats-kv.js";
import { connectNats } from "../../src/nats/connection.js";
import { hasNats, natsForSuite, natsForTest } from "../helpers/nats.js";
import { describeKeyValue } from "./key-value.contract.js";

/** Failover on 2.9: a Raft election takes 4-9 s, and the client needs a reconnect on top. */
const FAILOVER = { timeout: 45_000, interval: 250 };

const bucketName = () => `t_${randomUUID().replaceAll("-", "").slice(0, 16)}`;

async function connectTo(urls: string[], name: string): Promise<NatsConnection> {
  return connectNats({ servers: urls, name, connectTimeoutMs: 2000, attempts: 3 });
}

/** A fresh bucket (replicated on every server) on a fresh cluster of `size` servers, all closed with the test. */
async function bucketOnFreshCluster(size: 1 | 3, client: string, maxEntries = 100) {
  const nats = await natsForTest(size);
  const nc = await connectTo(nats.urls, client);
  onTestFinished(() => nc.close());
  const bucket = bucketName();
  const kv = await NatsKeyValue.open(nc, {
    bucket,
    maxEntries,
    maxAgeMs: 0,
    maxValueBytes: 1024,
    replicas: size,
  });
  onTestFinished(() => kv.close());
  return { nats, nc, bucket, kv };
}

describe.skipIf(!hasNats)("NATS KV on one server", () => {
  let nats: NatsCluster;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await natsForSuite(1);
    nc = await connectTo(nats.urls, "kv-contract");
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  describeKeyValue("NATS KV (nats-server 2.9, one server)", {
    open: ({ maxEntries, maxAgeMs }) =>
      NatsKeyValue.open(nc, {
        bucket: bucketName(),
        maxEntries,
        maxAgeMs,
        maxValueBytes: 64 * 1024,
        replicas: 1,
        // Short so the contract's "a deleted key gives its slot back" ends quickly.
        tombstoneGraceMs: 200,
      }),
    notifiesExpiry: false,
    deliversEveryChange: false,
  });

  it("binds to an existing bucket and brings its limits to the options", async () => {
    const bucket = bucketName();
    const first = await NatsKeyValue.open(nc, {
      bucket,
      maxEntries: 2,
      maxAgeMs: 0,
      maxValueBytes: 100,
      replicas: 1,
    });
    await first.put("a", "1");
    const second = await NatsKeyValue.open(nc, {
      bucket,
      maxEntries: 5,
      maxAgeMs: 0,
      maxValueBytes: 100,
      replicas: 1,
    });
    expect(await second.get("a")).toBe("1");
    const info = await (await jetstreamManager(nc)).streams.info(`KV_${bucket}`);
    expect(info.config.max_msgs).toBe(5);
    expect(info.config.discard).toBe("new");
  });

  it("a write within the bucket's bound is never dropped by the server to make room", async () => {
    const kv = await NatsKeyValue.open(nc, {
      bucket: bucketName(),
      maxEntries: 3,
      maxAgeMs: 0,
      maxValueBytes: 100,
      replicas: 1,
    });
    await kv.put("a", "1");
    await kv.put("b", "2");
    await kv.put("c", "3");
    await expect(kv.put("d", "4")).rejects.toThrow(/maximum of 3 entries/);
    expect((await kv.keys()).sort()).toEqual(["a", "b", "c"]);
  });
});

describe.skipIf(!hasNats)("NATS KV across a restart", () => {
  it("a watch goes on after its server is killed and restarted", async () => {
    const { nats, kv } = await bucketOnFreshCluster(1, "kv-restart");
    await kv.put("k.before", "1");
    const seen: KvChange[] = [];
    const watch = await kv.watch("k.", (c) => seen.push(c));
    await watch.initialLoaded;
    const server = nats.servers[0];
    if (!server) throw new Error("no server");
    await server.kill("SIGKILL");
    await server.restart();
    // The file store kept the value; the client reconnects on its own.
    await vi.waitFor(async () => expect(await kv.get("k.before")).toBe("1"), FAILOVER);
    await kv.put("k.after", "2");
    await kv.delete("k.before");
    await vi.waitFor(
      () =>
        expect(seen.map((c) => [c.key, c.value])).toEqual([
          ["k.before", "1"],
          ["k.after", "2"],
          ["k.before", null],
        ]),
      FAILOVER,
    );
  });
});

describe.skipIf(!hasNats)("NATS KV on a 3-server cluster, replicas 3", () => {
  it("keeps every value when one server is killed, and reads and writes work again within seconds", async () => {
    const { nats, nc, bucket, kv } = await bucketOnFreshCluster(3, "kv-cluster", 1000);
    const written = new Map<string, string>();
    for (let i = 0; i < 50; i++) {
      written.set(`node.${i}`, JSON.stringify({ i }));
      await kv.put(`node.${i}`, JSON.stringify({ i }));
    }
    const lease = await kv.create("lease.aggregator", "n-1");
    const info = await (await jetstreamManager(nc)).streams.info(`KV_${bucket}`);
    expect(info.config.num_replicas).toBe(3);
    // Kill the bucket's stream leader: the worst case, a new election.
    const leader = nats.servers.find((s) => s.name === info.cluster?.leader);
    expect(leader).toBeDefined();
    await leader?.kill("SIGKILL");

    const killedAt = Date.now();
    await vi.waitFor(async () => {
      expect(await kv.put("after.kill", "ok")).toEqual(expect.any(Number));
      // Listing creates a consumer, which needs the meta leader: it may have been on the killed server too.
      const entries = await kv.entries("node.");
      expect(new Map(entries.map((e) => [e.key, e.value]))).toEqual(written);
    }, FAILOVER);
    console.info(`KV back ${Date.now() - killedAt} ms after killing the stream leader`);
    expect(await kv.entry("lease.aggregator")).toMatchObject({ value: "n-1", revision: lease });
    expect(await kv.update("lease.aggregator", "n-2", lease as number)).toEqual(expect.any(Number));
    expect(await kv.create("lease.aggregator", "n-3")).toBeNull();
  });

  it("a watch keeps delivering after the server its client used is killed", async () => {
    const { nats, nc, kv } = await bucketOnFreshCluster(3, "kv-cluster-watch");
    await kv.put("flag.a", "on");
    const seen: KvChange[] = [];
    const watch = await kv.watch("flag.", (c) => seen.push(c));
    await watch.initialLoaded;
    const connected = nats.servers.find((s) => s.url.endsWith(nc.getServer()));
    expect(connected).toBeDefined();
    await connected?.kill("SIGKILL");

    await vi.waitFor(async () => {
      expect(await kv.put("flag.b", "on")).toEqual(expect.any(Number));
    }, FAILOVER);
    await kv.delete("flag.a");
    await vi.waitFor(
      () =>
        expect(seen.map((c) => [c.key, c.value])).toEqual([
          ["flag.a", "on"],
          ["flag.b", "on"],
          ["flag.a", null],
        ]),
      FAILOVER,
    );
    const revisions = seen.map((c) => c.revision);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
  });

  it("a watcher that was away while a key was deleted and its marker compacted still hears of the deletion", async () => {
    const nats = await natsForTest(3);
    const [n1] = nats.servers;
    if (!n1) throw new Error("no server");
    const nc = await connectTo(nats.urls.slice(1), "kv-writer");
    onTestFinished(() => nc.close());
    // The watcher's client knows only n1, so it stays away until n1 is back.
    const away = await connect({
      servers: [n1.url],
      name: "kv-away-watcher",
      ignoreClusterUpdates: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    onTestFinished(() => away.close());
    const options = {
      bucket: bucketName(),
      maxEntries: 3,
      maxAgeMs: 0,
      maxValueBytes: 1024,
      replicas: 3 as const,
    };
    const kv = await NatsKeyValue.open(nc, { ...options, tombstoneGraceMs: 0 });
    onTestFinished(() => kv.close());
    const watcherKv = await NatsKeyValue.open(away, options);
    onTestFinished(() => watcherKv.close());
    await kv.put("key.revoked", "valid");
    await kv.put("key.kept", "valid");
    const seen: KvChange[] = [];
    const watch = await watcherKv.watch("key.", (c) => seen.push(c));
    await watch.initialLoaded;
    expect(seen.map((c) => c.key)).toEqual(["key.revoked", "key.kept"]);

    await n1.kill("SIGKILL");
    // Each write may meet an election (n1 may have led the stream or the meta group): retried until it lands.
    await vi.waitFor(() => kv.delete("key.revoked"), FAILOVER);
    await vi.waitFor(() => kv.put("other.1", "x"), FAILOVER);
    // The bucket is full (two values and a delete marker): this write compacts the marker away.
    await vi.waitFor(() => kv.put("other.2", "x"), FAILOVER);
    const jsm = await jetstreamManager(nc);
    expect(
      await jsm.streams
        .getMessage(`KV_${options.bucket}`, { last_by_subj: `$KV.${options.bucket}.key.revoked` })
        .catch(() => null),
    ).toBeNull();

    await n1.restart();
    await vi.waitFor(
      () => expect(seen.map((c) => [c.key, c.value])).toContainEqual(["key.revoked", null]),
      FAILOVER,
    );
    expect(seen.filter((c) => c.key === "key.kept")).toHaveLength(1);
    const revisions = seen.map((c) => c.revision);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
  });
});
