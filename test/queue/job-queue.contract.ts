import { describe, expect, it, onTestFinished } from "vitest";
import type { JobMessage, JobQueue, QueueStats } from "../../src/queue/job-queue.js";
import { QueueFullError } from "../../src/queue/job-queue.js";

export interface QueueFactoryOptions {
  capacity: number;
  maxAttempts: number;
}

/**
 * What an adapter can promise beyond the port's core. The in-memory queue
 * promises everything (the defaults); a distributed one states what it
 * cannot do, and the suite checks the weaker promise for it only.
 */
export interface QueueCapabilities {
  /**
   * `stats()` reflects an enqueue, pull or settlement as soon as it
   * resolves. Without it (JetStream: a cached snapshot refreshed from the
   * server, so settlements the server applies asynchronously show up a
   * refresh later) the suite waits for the expected values.
   */
  exactStats: boolean;
  /**
   * `retry()` puts the message back ahead of newer ones at once. Without it
   * (JetStream: a NAK with a short jittered delay, so a crashing job does
   * not hit the next worker instantly) a newer message may come first; the
   * retried one must still come back, once, with the next attempt number.
   */
  retryAtHead: boolean;
}

let counter = 0;
export function message(overrides: Partial<JobMessage> = {}): JobMessage {
  const id = `job-${++counter}`;
  return {
    id,
    tenant: null,
    spec: {
      inputFormat: "jpeg",
      outputFormat: "jpeg",
      fit: "cover",
      position: "centre",
      enlarge: false,
      strip: true,
      pages: 1,
      limits: { maxInputPixels: 1e6, maxOutputDimension: 1000, timeoutMs: 1000 },
    },
    input: { node: "n1", key: id, bytes: 10 },
    deadline: Date.now() + 60_000,
    enqueuedAt: Date.now(),
    ...overrides,
  };
}

/**
 * The JobQueue contract: every adapter (in-memory FIFO, JetStream) must pass it.
 * `make` returns a fresh, empty queue; the suite closes it.
 */
export function describeJobQueue(
  name: string,
  make: (options: QueueFactoryOptions) => Promise<JobQueue>,
  capabilities: QueueCapabilities = { exactStats: true, retryAtHead: true },
) {
  async function expectStats(queue: JobQueue, expected: Partial<QueueStats>): Promise<void> {
    if (capabilities.exactStats) expect(queue.stats()).toMatchObject(expected);
    else await expect.poll(() => queue.stats(), { timeout: 15_000, interval: 20 }).toMatchObject(expected);
  }

  async function fresh(options: Partial<QueueFactoryOptions> = {}): Promise<JobQueue> {
    const queue = await make({ capacity: 8, maxAttempts: 2, ...options });
    onTestFinished(() => queue.close());
    return queue;
  }
  const signal = () => new AbortController().signal;

  describe(`JobQueue contract: ${name}`, () => {
    it("delivers messages in FIFO order", async () => {
      const queue = await fresh();
      const sent = [message(), message(), message()];
      for (const m of sent) await queue.enqueue(m);
      const got: string[] = [];
      for (let i = 0; i < sent.length; i++) {
        const d = await queue.pull(signal());
        got.push(d?.message.id ?? "none");
        await d?.ack();
      }
      expect(got).toEqual(sent.map((m) => m.id));
    });

    it("carries the control message intact", async () => {
      const queue = await fresh();
      const m = message({ tenant: "ten_1" });
      await queue.enqueue(m);
      const d = await queue.pull(signal());
      expect(d?.message).toEqual(m);
      expect(d?.attempt).toBe(1);
      await d?.ack();
    });

    it("rejects new messages at capacity and keeps the queued ones", async () => {
      const queue = await fresh({ capacity: 2 });
      const kept = [message(), message()];
      for (const m of kept) await queue.enqueue(m);
      await expect(queue.enqueue(message())).rejects.toBeInstanceOf(QueueFullError);
      await expectStats(queue, { depth: 2, capacity: 2 });
      const first = await queue.pull(signal());
      expect(first?.message.id).toBe(kept[0]?.id);
      await first?.ack();
      await queue.enqueue(message());
      await expectStats(queue, { depth: 2 });
    });

    it("a pull waits for the next message", async () => {
      const queue = await fresh();
      const pending = queue.pull(signal());
      const m = message();
      await queue.enqueue(m);
      const d = await pending;
      expect(d?.message.id).toBe(m.id);
      await d?.ack();
    });

    it("an aborted pull resolves null and takes nothing", async () => {
      const queue = await fresh();
      const abort = new AbortController();
      const pending = queue.pull(abort.signal);
      abort.abort();
      expect(await pending).toBeNull();
      const m = message();
      await queue.enqueue(m);
      const d = await queue.pull(signal());
      expect([d?.message.id, d?.attempt]).toEqual([m.id, 1]);
      await d?.ack();
    });

    it.runIf(capabilities.retryAtHead)(
      "retry redelivers ahead of newer messages, up to maxAttempts",
      async () => {
        const queue = await fresh({ maxAttempts: 2 });
        const first = message();
        const second = message();
        await queue.enqueue(first);
        await queue.enqueue(second);
        const d1 = await queue.pull(signal());
        expect(await d1?.retry()).toBe(true);
        const d2 = await queue.pull(signal());
        expect([d2?.message.id, d2?.attempt]).toEqual([first.id, 2]);
        expect(await d2?.retry()).toBe(false);
        const d3 = await queue.pull(signal());
        expect(d3?.message.id).toBe(second.id);
        await d3?.ack();
      },
    );

    it.runIf(!capabilities.retryAtHead)("retry redelivers once more, up to maxAttempts", async () => {
      const queue = await fresh({ maxAttempts: 2 });
      const first = message();
      const second = message();
      await queue.enqueue(first);
      await queue.enqueue(second);
      const d1 = await queue.pull(signal());
      expect([d1?.message.id, d1?.attempt]).toEqual([first.id, 1]);
      expect(await d1?.retry()).toBe(true);
      const got: [string | undefined, number | undefined][] = [];
      for (let i = 0; i < 2; i++) {
        const d = await queue.pull(signal());
        got.push([d?.message.id, d?.attempt]);
        if (d?.message.id === first.id) expect(await d.retry()).toBe(false);
        else await d?.ack();
      }
      expect(got).toEqual(
        expect.arrayContaining([
          [first.id, 2],
          [second.id, 1],
        ]),
      );
      await expectStats(queue, { depth: 0, inFlight: 0 });
      const abort = new AbortController();
      const pending = queue.pull(abort.signal);
      abort.abort();
      expect(await pending).toBeNull();
    });

    it("acked and terminated messages are never delivered again", async () => {
      const queue = await fresh();
      await queue.enqueue(message());
      await queue.enqueue(message());
      await (await queue.pull(signal()))?.ack();
      await (await queue.pull(signal()))?.term();
      await expectStats(queue, { depth: 0, inFlight: 0 });
      const abort = new AbortController();
      const pending = queue.pull(abort.signal);
      abort.abort();
      expect(await pending).toBeNull();
    });

    it("requeue puts a message back without charging an attempt (it never ran)", async () => {
      const queue = await fresh({ maxAttempts: 1 });
      const m = message({ tenant: "ten_1" });
      await queue.enqueue(m);
      const d1 = await queue.pull(signal());
      expect(await d1?.requeue()).toBe(true);
      const d2 = await queue.pull(signal());
      expect([d2?.message.id, d2?.message.tenant, d2?.attempt]).toEqual([m.id, "ten_1", 1]);
      // Its one attempt is still to be used: a crash now gives it up.
      expect(await d2?.retry()).toBe(false);
      await expectStats(queue, { depth: 0, inFlight: 0 });
      const abort = new AbortController();
      const pending = queue.pull(abort.signal);
      abort.abort();
      expect(await pending).toBeNull();
    });

    it("reports depth, in-flight and the oldest message's age", async () => {
      const queue = await fresh();
      await queue.enqueue(message({ enqueuedAt: Date.now() - 5000 }));
      await queue.enqueue(message());
      if (capabilities.exactStats) expect(queue.stats().oldestAgeMs).toBeGreaterThanOrEqual(5000);
      else
        await expect.poll(() => queue.stats().oldestAgeMs, { timeout: 15_000 }).toBeGreaterThanOrEqual(5000);
      const d = await queue.pull(signal());
      await expectStats(queue, { depth: 1, inFlight: 1 });
      await d?.ack();
      await expectStats(queue, { inFlight: 0 });
    });

    it("close wakes waiting consumers with null", async () => {
      const queue = await make({ capacity: 4, maxAttempts: 1 });
      const pending = queue.pull(signal());
      await queue.close();
      expect(await pending).toBeNull();
    });
  });
}
