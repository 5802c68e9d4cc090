import { randomUUID } from "node:crypto";
import { type JetStreamManager, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { NatsCluster } from "../../src/dev/nats-cluster.js";
import { enqueueWithin, QueueUnavailableError } from "../../src/queue/enqueue.js";
import { parseAckSubject } from "../../src/queue/jetstream-pull.js";
import {
  JetStreamJobQueue,
  type JetStreamQueueOptions,
  JobMessageTooLargeError,
  type QueueLogger,
  QueueSetupError,
} from "../../src/queue/jetstream-queue.js";
import type { Delivery, JobQueue } from "../../src/queue/job-queue.js";
import { QueueFullError } from "../../src/queue/job-queue.js";
import { delay } from "../../src/util/time.js";
import { hasNats, natsForSuite, natsForTest } from "../helpers/nats.js";
import { describeJobQueue, message } from "./job-queue.contract.js";

/** Records what the adapter logs, so tests stay quiet and can assert on it. */
function recordingLogger() {
  const lines: { level: "warn" | "info"; msg: string }[] = [];
  const logger: QueueLogger = {
    warn: (_obj, msg) => lines.push({ level: "warn", msg }),
    info: (_obj, msg) => lines.push({ level: "info", msg }),
  };
  return { logger, lines };
}

/** A fresh stream per test: its own name, subject and durable. */
function options(overrides: Partial<JetStreamQueueOptions> = {}): JetStreamQueueOptions {
  const tag = randomUUID().slice(0, 8);
  return {
    stream: `JOBS_${tag}`,
    subject: `imgfleet.jobs.${tag}`,
    durable: "workers",
    capacity: 8,
    maxAttempts: 2,
    replicas: 1,
    ackWaitMs: 30_000,
    logger: recordingLogger().logger,
    ...overrides,
  };
}

async function open(nc: NatsConnection, o: JetStreamQueueOptions): Promise<JetStreamJobQueue> {
  const queue = await JetStreamJobQueue.open(nc, o);
  onTestFinished(() => queue.close());
  return queue;
}

/** A connection that rides out server restarts quickly, closed when the test ends. */
async function connectTo(cluster: NatsCluster): Promise<NatsConnection> {
  const nc = await connect({ servers: cluster.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  onTestFinished(() => nc.close());
  return nc;
}

async function storedMessages(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

/** A pull that is cancelled at once must come back empty: nothing left to deliver now. */
async function expectNothingNow(queue: JobQueue): Promise<void> {
  const abort = new AbortController();
  const pending = queue.pull(abort.signal);
  abort.abort();
  expect(await pending).toBeNull();
}

const signal = () => new AbortController().signal;

describe.runIf(hasNats)("JetStreamJobQueue", () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    cluster = await natsForSuite(1);
    nc = await connect({ servers: cluster.urls });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  describeJobQueue("JetStream (1 server)", (o) => JetStreamJobQueue.open(nc, options(o)), {
    exactStats: false,
    retryAtHead: false,
  });

  describe("adapter", () => {
    it("stores a job enqueued twice under the same id once", async () => {
      const o = options();
      const queue = await open(nc, o);
      const m = message();
      await queue.enqueue(m);
      await queue.enqueue(m);
      expect(await storedMessages(jsm, o.stream)).toBe(1);
      // The depth comes from the stream (the next stats refresh), never from counting enqueues.
      await expect.poll(() => queue.stats().depth, { timeout: 10_000 }).toBe(1);
      const d = await queue.pull(signal());
      expect([d?.message.id, d?.attempt]).toEqual([m.id, 1]);
      await d?.ack();
      expect(await storedMessages(jsm, o.stream)).toBe(0);
      await expectNothingNow(queue);
    });

    it("an API node's depth follows the stream, not its own enqueue rate", async () => {
      // One node only enqueues (an API node), another pulls and acks on four lanes (a worker node),
      // fast enough that hardly anything waits. The API node never sees those deliveries.
      const o = options({ capacity: 10_000, statsRefreshMs: 250 });
      const api = await open(nc, o);
      const worker = await open(await connectTo(cluster), o);
      const stop = new AbortController();
      const lane = async () => {
        for (let d = await worker.pull(stop.signal); d; d = await worker.pull(stop.signal)) await d.ack();
      };
      const lanes = Array.from({ length: 4 }, lane);
      const believed: number[] = [];
      const real: number[] = [];
      let enqueued = 0;
      const runMs = 3_000;
      const until = performance.now() + runMs;
      await Promise.all([
        (async () => {
          while (performance.now() < until) {
            await api.enqueue(message());
            enqueued++;
          }
        })(),
        (async () => {
          while (performance.now() < until) {
            believed.push(api.stats().depth);
            real.push((await jsm.consumers.info(o.stream, o.durable)).num_pending);
            await delay(20);
          }
        })(),
      ]);
      stop.abort();
      await Promise.all(lanes);
      const rate = Math.round(enqueued / (runMs / 1000));
      console.info(
        `enqueue-only node at ${rate} jobs/s: believed depth at most ${Math.max(...believed)}, ` +
          `the stream held at most ${Math.max(...real)} waiting, over ${real.length} samples`,
      );
      // Observed 1,500-3,000 jobs/s, ten times and more the fleet test's ~140 requests/s to one API node.
      // The rate only has to be high enough that the old error (rate × 0.25 s) dwarfs the margin below.
      const tolerance = 20;
      expect((rate * (o.statsRefreshMs ?? 0)) / 1000).toBeGreaterThan(3 * tolerance);
      // Counting enqueues between refreshes believed about rate × 0.25 s: 935 against 10 really waiting.
      expect(Math.max(...believed)).toBeLessThanOrEqual(Math.max(...real) + tolerance);
    });

    it("redelivers an unsettled job to another node after the ack wait", async () => {
      const o = options({ ackWaitMs: 1_000 });
      const doomed = await connectTo(cluster);
      const first = await open(doomed, o);
      const second = await open(nc, o);
      const m = message();
      await first.enqueue(m);
      // Before the pull: the server's ack timer starts after this, so no redelivery can come sooner.
      const pulledAt = performance.now();
      const d1 = await first.pull(signal());
      expect([d1?.message.id, d1?.attempt]).toEqual([m.id, 1]);
      // The first worker node dies holding the job: no ack, no nak, no connection.
      await doomed.close();
      const d2 = await second.pull(signal());
      expect([d2?.message.id, d2?.attempt]).toEqual([m.id, 2]);
      expect(performance.now() - pulledAt).toBeGreaterThanOrEqual(o.ackWaitMs);
      await d2?.ack();
      expect(await storedMessages(jsm, o.stream)).toBe(0);
    });

    it("bounds deliveries by maxAttempts, and removes a job whose last attempt was never settled", async () => {
      const { logger, lines } = recordingLogger();
      const o = options({ maxAttempts: 2, ackWaitMs: 1_000, logger });
      const queue = await open(nc, o);
      const abandoned = message();
      await queue.enqueue(abandoned);
      const attempts: number[] = [];
      for (let i = 0; i < 2; i++) attempts.push((await queue.pull(signal()))?.attempt ?? 0);
      expect(attempts).toEqual([1, 2]);
      // A third delivery is over the bound: the adapter terms it instead of returning it.
      const abort = new AbortController();
      const pending = queue.pull(abort.signal);
      await expect.poll(() => storedMessages(jsm, o.stream), { timeout: 15_000 }).toBe(0);
      abort.abort();
      expect(await pending).toBeNull();
      expect(lines.some((l) => l.level === "warn" && l.msg.includes("never settled"))).toBe(true);

      // A retried job that fails again is dropped as well.
      const retried = message();
      await queue.enqueue(retried);
      const d1 = await queue.pull(signal());
      expect(await d1?.retry()).toBe(true);
      const d2 = await queue.pull(signal());
      expect([d2?.message.id, d2?.attempt]).toEqual([retried.id, 2]);
      expect(await d2?.retry()).toBe(false);
      await expect.poll(() => storedMessages(jsm, o.stream), { timeout: 15_000 }).toBe(0);
    });

    it("pulls job after job on the same subscriptions: no SUB/UNSUB per job for the cluster to propagate", async () => {
      const o = options({ capacity: 32 });
      const own = await connectTo(cluster);
      const queue = await open(own, o);
      // The server's count of subscriptions ever added: a fresh inbox per pull would add one per job.
      const subscriptionsAdded = async () => {
        await own.flush();
        const subsz = await fetch(`${cluster.servers[0]?.monitorUrl}/subsz`);
        return ((await subsz.json()) as { num_inserts: number }).num_inserts;
      };
      const run = async (jobs: number) => {
        for (let i = 0; i < jobs; i++) await queue.enqueue(message());
        for (let i = 0; i < jobs; i++) await (await queue.pull(signal()))?.ack();
      };
      await run(2);
      const before = await subscriptionsAdded();
      await run(20);
      expect(await subscriptionsAdded()).toBe(before);
    });

    it("rejects a job when the stream is full and keeps the queued ones", async () => {
      const o = options({ capacity: 3 });
      const queue = await open(nc, o);
      const kept = [message(), message(), message()];
      for (const m of kept) await queue.enqueue(m);
      const refused = queue.enqueue(message());
      await expect(refused).rejects.toBeInstanceOf(QueueFullError);
      await expect(refused).rejects.toMatchObject({ capacity: 3 });
      expect(await storedMessages(jsm, o.stream)).toBe(3);
      expect(queue.stats()).toMatchObject({ depth: 3, capacity: 3 });
      const got: string[] = [];
      for (let i = 0; i < kept.length; i++) {
        const d = await queue.pull(signal());
        got.push(d?.message.id ?? "none");
        await d?.ack();
      }
      expect(got).toEqual(kept.map((m) => m.id));
      await queue.enqueue(message());
    });

    it("refuses a control message over 64 KiB", async () => {
      const o = options();
      const queue = await open(nc, o);
      const huge = message({ tenant: "x".repeat(70_000) });
      await expect(queue.enqueue(huge)).rejects.toBeInstanceOf(JobMessageTooLargeError);
      expect(await storedMessages(jsm, o.stream)).toBe(0);
    });

    it("working() keeps a long job from being redelivered", async () => {
      const o = options({ ackWaitMs: 1_000 });
      const holder = await open(nc, o);
      const other = await open(nc, o);
      await holder.enqueue(message());
      const d = (await holder.pull(signal())) as Delivery;
      const keepAlive = setInterval(() => void d.working(), 300);
      onTestFinished(() => clearInterval(keepAlive));
      // Two and a half ack waits: without working() the job would have moved.
      expect(await other.pull(AbortSignal.timeout(2_500))).toBeNull();
      clearInterval(keepAlive);
      await d.ack();
      expect(await storedMessages(jsm, o.stream)).toBe(0);
    });

    it("two nodes opening a fresh queue at once both succeed, and share it", async () => {
      const o = options();
      const other = await connectTo(cluster);
      const [a, b] = await Promise.all([JetStreamJobQueue.open(nc, o), JetStreamJobQueue.open(other, o)]);
      onTestFinished(async () => {
        await Promise.all([a.close(), b.close()]);
      });
      const m = message();
      await a.enqueue(m);
      const d = await b.pull(signal());
      expect(d?.message.id).toBe(m.id);
      await d?.ack();
    });

    it("binds to an existing stream, updating what may change, and refuses an incompatible one", async () => {
      const o = options({ capacity: 4 });
      await open(nc, o);
      await open(nc, { ...o, capacity: 6 });
      expect((await jsm.streams.info(o.stream)).config.max_msgs).toBe(6);

      const foreign = options();
      await jsm.streams.add({
        name: foreign.stream,
        subjects: [foreign.subject],
        retention: RetentionPolicy.Limits,
        storage: StorageType.Memory,
      });
      await expect(JetStreamJobQueue.open(nc, foreign)).rejects.toBeInstanceOf(QueueSetupError);
    });
  });

  describe("outages", () => {
    it("enqueueWithin succeeds after a short outage of the only server", async () => {
      const single = await natsForTest(1);
      const conn = await connectTo(single);
      const o = options({ publishTimeoutMs: 500 });
      const queue = await open(conn, o);
      const server = single.servers[0];
      if (!server) throw new Error("no server");
      await server.kill("SIGKILL");
      let restarted: Promise<void> | undefined;
      const m = message();
      await enqueueWithin(queue, m, Date.now() + 20_000, {
        onRetry: (error) => {
          expect(error).toBeInstanceOf(QueueUnavailableError);
          restarted ??= server.restart();
        },
      });
      expect(restarted).toBeDefined();
      await restarted;
      const d = await queue.pull(signal());
      expect([d?.message.id, d?.attempt]).toEqual([m.id, 1]);
      await d?.ack();
      // Attempts whose replies were lost were deduplicated by the job id.
      await expectNothingNow(queue);
      expect(await storedMessages(await jetstreamManager(conn), o.stream)).toBe(0);
    });

    it("enqueueWithin fails with QueueUnavailableError once the deadline passes with the server down", async () => {
      const single = await natsForTest(1);
      const conn = await connectTo(single);
      const queue = await open(conn, options({ publishTimeoutMs: 500 }));
      await single.servers[0]?.kill("SIGKILL");
      const deadline = Date.now() + 1_500;
      const failed = enqueueWithin(queue, message(), deadline);
      await expect(failed).rejects.toBeInstanceOf(QueueUnavailableError);
      await expect(failed).rejects.toMatchObject({ reason: "deadline" });
      // Not before the deadline, and not a whole publish attempt (500 ms) after it: mid-attempt included.
      const overshootMs = Date.now() - deadline;
      expect(overshootMs).toBeGreaterThanOrEqual(-20); // timer granularity
      expect(overshootMs).toBeLessThan(500);
    });
  });

  describe("cluster (3 servers, replicas 3)", () => {
    it("loses no accepted job when the stream leader is killed, and recovers within seconds", async () => {
      const three = await natsForTest(3);
      const conn = await connectTo(three);
      const admin = await jetstreamManager(conn);
      const o = options({ replicas: 3, capacity: 100_000, publishTimeoutMs: 1_000 });
      const queue = await open(conn, o);

      const load = enqueueLoad(queue);
      await load.waitForSuccesses(200);
      const leader = (await admin.streams.info(o.stream)).cluster?.leader;
      const victim = three.servers.find((s) => s.name === leader);
      if (!victim) throw new Error(`stream leader ${leader} is none of ${three.servers.map((s) => s.name)}`);
      const killedAt = performance.now();
      await victim.kill("SIGKILL");
      const attempts = await load.untilRecovered(killedAt);

      // An attempt can fail because of the kill only if it was still in flight at it: failures end after it.
      const failures = attempts.filter((a) => !a.ok);
      for (const f of failures) expect(f.error).toBe("QueueUnavailableError");
      for (const f of failures)
        expect(f.endedAt, "a failure that ended before the kill").toBeGreaterThanOrEqual(killedAt);
      const lastFailureEnded = failures.at(-1)?.endedAt ?? killedAt;
      const recovered = attempts.find((a) => a.ok && a.startedAt >= lastFailureEnded);
      const recoveredMs = Math.round((recovered?.endedAt ?? killedAt) - killedAt);
      console.info(
        `stream leader ${leader} killed: ${failures.length} of ${attempts.length} enqueues failed, ` +
          `the last ${Math.round(lastFailureEnded - killedAt)} ms after the kill; enqueues succeed again ${recoveredMs} ms after it`,
      );
      // Success again within seconds (a Raft election is 4-9 s; observed 4.3-5.3 s here).
      expect(recoveredMs).toBeLessThan(30_000);

      // The cluster elected another leader, among the survivors.
      const survivors = three.servers.filter((s) => s !== victim).map((s) => s.name);
      await expect
        .poll(async () => (await admin.streams.info(o.stream)).cluster?.leader, { timeout: 30_000 })
        .toBeOneOf(survivors);

      // Every accepted job is delivered exactly once; a failed attempt's job at most once.
      const accepted = attempts.filter((a) => a.ok).map((a) => a.id);
      const counts = await drain(queue, admin, o, new Set(accepted));
      for (const id of accepted) expect(counts.get(id), id).toBe(1);
      for (const [id, n] of counts) expect(n, id).toBe(1);
    }, 120_000);
  });
});

interface Attempt {
  id: string;
  ok: boolean;
  /** performance.now() when the enqueue was called and when it returned or threw. */
  startedAt: number;
  endedAt: number;
  error?: string;
}

/** Enqueues one job after another (paced, like steady traffic) and records each outcome. */
function enqueueLoad(queue: JobQueue) {
  const attempts: Attempt[] = [];
  let stopping = false;
  let successes = 0;
  const running = (async () => {
    while (!stopping) {
      const m = message();
      const startedAt = performance.now();
      try {
        await queue.enqueue(m);
        attempts.push({ id: m.id, ok: true, startedAt, endedAt: performance.now() });
        successes++;
      } catch (error) {
        attempts.push({
          id: m.id,
          ok: false,
          startedAt,
          endedAt: performance.now(),
          error: (error as Error).name,
        });
      }
      await delay(5);
    }
  })();
  return {
    async waitForSuccesses(n: number): Promise<void> {
      await expect.poll(() => successes, { timeout: 30_000 }).toBeGreaterThanOrEqual(n);
    },
    /** Runs until 50 enqueues in a row succeed after the last failure (at least 3 s after the kill). */
    async untilRecovered(killedAt: number): Promise<Attempt[]> {
      await expect
        .poll(
          () => {
            const recent = attempts.slice(-50);
            return performance.now() - killedAt > 3_000 && recent.length === 50 && recent.every((a) => a.ok);
          },
          { timeout: 60_000, interval: 50 },
        )
        .toBe(true);
      stopping = true;
      await running;
      return attempts;
    },
  };
}

/** Pulls and acks on four lanes until the stream is empty and every expected job was seen; counts deliveries per job. */
async function drain(
  queue: JobQueue,
  admin: JetStreamManager,
  o: JetStreamQueueOptions,
  expected: Set<string>,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const stop = new AbortController();
  const lane = async () => {
    for (;;) {
      const d = await queue.pull(stop.signal);
      if (!d) return;
      counts.set(d.message.id, (counts.get(d.message.id) ?? 0) + 1);
      await d.ack();
    }
  };
  const lanes = Array.from({ length: 4 }, lane);
  await expect
    .poll(
      async () => {
        const info = await admin.consumers.info(o.stream, o.durable);
        const seenAll = [...expected].every((id) => counts.has(id));
        return seenAll && info.num_pending === 0 && info.num_ack_pending === 0;
      },
      { timeout: 60_000, interval: 200 },
    )
    .toBe(true);
  stop.abort();
  await Promise.all(lanes);
  return counts;
}

describe("JetStream delivery subjects", () => {
  it("reads the delivery count and stream sequence from both reply-subject forms, and refuses others", () => {
    expect(parseAckSubject("$JS.ACK.JOBS.workers.3.41.57.1796041057749386703.0")).toEqual({
      deliveryCount: 3,
      streamSequence: 41,
    });
    expect(parseAckSubject("$JS.ACK.hub.ACCHASH.JOBS.workers.2.7.9.1796041057749386703.5.token")).toEqual({
      deliveryCount: 2,
      streamSequence: 7,
    });
    expect(() => parseAckSubject("_INBOX.abc.1")).toThrow(/not a JetStream delivery/);
  });
});
