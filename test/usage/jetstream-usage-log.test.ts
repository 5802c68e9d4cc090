import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import type { NatsCluster } from "../../src/dev/nats-cluster.js";
import { connectNats } from "../../src/nats/connection.js";
import {
  JetStreamUsageLog,
  type JetStreamUsageLogOptions,
  UsageBatchTooLargeError,
} from "../../src/usage/jetstream-usage-log.js";
import type { UsageBatch } from "../../src/usage/model.js";
import { CI_POLL } from "../helpers/ci.js";
import { hasNats, natsForSuite, natsForTest } from "../helpers/nats.js";
import { batchOf, describeUsageLog } from "./usage-log.contract.js";

/** Failover on 2.9: a Raft election takes 4-9 s, and the client needs a reconnect on top. */
const FAILOVER = { timeout: 60_000, interval: 250 };

function names(): Pick<JetStreamUsageLogOptions, "stream" | "subject"> {
  const id = randomUUID().replaceAll("-", "").slice(0, 16);
  return { stream: `USAGE_${id}`, subject: `usage.${id}` };
}

function connectTo(urls: string[], name: string): Promise<NatsConnection> {
  return connectNats({ servers: urls, name, connectTimeoutMs: 2000, attempts: 3 });
}

describe.skipIf(!hasNats)("JetStream usage log on one server", () => {
  let nats: NatsCluster;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await natsForSuite(1);
    nc = await connectTo(nats.urls, "usage-contract");
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  describeUsageLog("JetStream work-queue stream (nats-server 2.9, one server)", {
    open: ({ capacity }) => JetStreamUsageLog.open(nc, { ...names(), capacity, replicas: 1 }),
    freesRoomAfterAck: true,
  });

  it("creates a file-backed work-queue stream that refuses rather than drops, deduplicating by batch id", async () => {
    const { stream, subject } = names();
    const log = await JetStreamUsageLog.open(nc, {
      stream,
      subject,
      capacity: 7,
      replicas: 1,
      duplicateWindowMs: 60_000,
    });
    onTestFinished(() => log.close());
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    expect(info.config).toMatchObject({
      subjects: [subject],
      retention: "workqueue",
      discard: "new",
      storage: "file",
      max_msgs: 7,
      duplicate_window: 60_000_000_000,
    });
  });

  it("carries a batch of a few hundred KB whole", async () => {
    const log = await JetStreamUsageLog.open(nc, { ...names(), capacity: 5, replicas: 1 });
    onTestFinished(() => log.close());
    const big = batchOf(1500);
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThan(300 * 1024);
    await log.publish(big);
    const got: UsageBatch[] = [];
    const consumer = log.consume(async (b) => {
      got.push(b);
    });
    onTestFinished(() => consumer.stop());
    await vi.waitFor(() => expect(got).toHaveLength(1), CI_POLL);
    expect(got[0]).toEqual(big);
  });

  it("refuses a batch larger than one NATS message with a message that says what to change", async () => {
    const log = await JetStreamUsageLog.open(nc, { ...names(), capacity: 5, replicas: 1 });
    onTestFinished(() => log.close());
    const huge = batchOf(6000);
    const error = await log.publish(huge).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageBatchTooLargeError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^usage batch ${huge.id} is \\d+\\.\\d+ MiB of JSON \\(6000 records\\), more than the 1023 KiB one NATS message may carry .*lower usage\\.maxBatchRecords`,
      ),
    );
  });

  it("keeps a batch whose handler runs longer than the ack wait from being delivered again meanwhile", async () => {
    const log = await JetStreamUsageLog.open(nc, { ...names(), capacity: 5, replicas: 1, ackWaitMs: 1000 });
    onTestFinished(() => log.close());
    const batch = batchOf(1);
    await log.publish(batch);
    const deliveries: string[] = [];
    let done = false;
    const consumer = log.consume(async (b) => {
      deliveries.push(b.id);
      // The slow handler is the scenario itself: three ack waits long.
      await new Promise((r) => setTimeout(r, 3000));
      done = true;
    });
    onTestFinished(() => consumer.stop());
    await vi.waitFor(() => expect(done).toBe(true), { timeout: 10_000 });
    await consumer.stop();
    expect(deliveries).toEqual([batch.id]);
  });

  it("hands a batch whose aggregator died mid-handler to the next aggregator after the ack wait", async () => {
    const options = { ...names(), capacity: 5, replicas: 1 as const, ackWaitMs: 1000 };
    const crashing = await connectTo(nats.urls, "usage-crashing-aggregator");
    const first = await JetStreamUsageLog.open(crashing, options);
    const batch = batchOf(2);
    await first.publish(batch);
    let taken: () => void = () => {};
    const inHandler = new Promise<void>((resolve) => {
      taken = resolve;
    });
    first.consume(() => {
      taken();
      return new Promise<void>(() => {}); // never finishes: the process dies first
    });
    await inHandler;
    await crashing.close(); // the crash: no ack, no nak

    const second = await JetStreamUsageLog.open(nc, options);
    onTestFinished(() => second.close());
    const got: UsageBatch[] = [];
    const consumer = second.consume(async (b) => {
      got.push(b);
    });
    onTestFinished(() => consumer.stop());
    await vi.waitFor(() => expect(got.map((b) => b.id)).toEqual([batch.id]), { timeout: 15_000 });
  });
});

describe.skipIf(!hasNats)("JetStream usage log on a 3-server cluster, replicas 3", () => {
  it("loses no published batch when the stream leader is killed", async () => {
    const nats = await natsForTest(3);
    const nc = await connectTo(nats.urls, "usage-cluster");
    onTestFinished(() => nc.close());
    const options = { ...names(), capacity: 100, replicas: 3 as const };
    const log = await JetStreamUsageLog.open(nc, options);
    onTestFinished(() => log.close());
    const sent: UsageBatch[] = [];
    for (let i = 0; i < 20; i++) {
      const batch = batchOf(50);
      await log.publish(batch);
      sent.push(batch);
    }
    const info = await (await jetstreamManager(nc)).streams.info(options.stream);
    expect(info.config.num_replicas).toBe(3);
    const leader = nats.servers.find((s) => s.name === info.cluster?.leader);
    expect(leader).toBeDefined();
    await leader?.kill("SIGKILL");

    const got = new Map<string, UsageBatch>();
    const consumer = log.consume(async (b) => {
      got.set(b.id, b);
    });
    onTestFinished(() => consumer.stop());
    await vi.waitFor(() => expect(got.size).toBe(sent.length), FAILOVER);
    for (const batch of sent) expect(got.get(batch.id)).toEqual(batch);
    // And the log takes new batches again under the new leader.
    const after = batchOf(1);
    await vi.waitFor(() => log.publish(after), FAILOVER);
    await vi.waitFor(() => expect(got.has(after.id)).toBe(true), FAILOVER);
  });
});
