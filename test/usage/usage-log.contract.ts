import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { groupRecords, type MeterRecord, type UsageBatch } from "../../src/usage/model.js";
import { type UsageConsumer, type UsageLog, UsageLogFullError } from "../../src/usage/usage-log.js";
import { CI_POLL } from "../helpers/ci.js";

export interface UsageLogHarness {
  /** A fresh, empty log holding at most `capacity` batches. */
  open(options: { capacity: number }): Promise<UsageLog>;
  /**
   * When a consumed batch's room comes back. false: as its handler resolves
   * (the embedded log drops it in the same tick). true: once the transport
   * has processed the ack sent after the handler resolved, a server round
   * trip later (JetStream removes a work-queue message on its ack), so the
   * suite waits for the room instead of expecting it in the same tick.
   */
  freesRoomAfterAck: boolean;
}

let seq = 0;
export function batchOf(records: number, tenant = "ten_contract"): UsageBatch {
  seq++;
  const list: MeterRecord[] = Array.from({ length: records }, (_, i) => ({
    id: `req-${seq}-${i}`,
    tenant,
    key: "key_x",
    at: Date.UTC(2026, 10, 30, 12, 0, i),
    op: "resize",
    status: 200,
    inBytes: 1000 + i,
    outBytes: 100,
    inPixels: 10_000,
    outPixels: 100,
    inFormat: "jpeg",
    outFormat: "webp",
    queueMs: 1,
    processMs: 5,
    cpuMs: 4,
  }));
  return {
    id: `ub_contract_${seq}_${Date.now()}`,
    node: "n1",
    sealedAt: Date.now(),
    groups: groupRecords(list),
    records: list,
  };
}

/** The contract every UsageLog adapter keeps: the same suite runs against each. */
export function describeUsageLog(name: string, harness: UsageLogHarness): void {
  describe(`UsageLog contract: ${name}`, () => {
    let log: UsageLog;
    let consumer: UsageConsumer | null;
    beforeEach(async () => {
      log = await harness.open({ capacity: 5 });
      consumer = null;
    });
    afterEach(async () => {
      await consumer?.stop();
      await log.close();
    });

    const collect = (into: UsageBatch[], handle?: (b: UsageBatch) => Promise<void>) => {
      consumer = log.consume(async (batch) => {
        await handle?.(batch);
        into.push(batch);
      });
    };

    it("delivers every published batch whole, in the order published, including those published before the consumer", async () => {
      const sent = [batchOf(3), batchOf(1)];
      await log.publish(sent[0] as UsageBatch);
      const got: UsageBatch[] = [];
      collect(got);
      await log.publish(sent[1] as UsageBatch);
      await vi.waitFor(() => expect(got).toHaveLength(2), CI_POLL);
      expect(got).toEqual(sent);
    });

    it("delivers a batch published twice under the same id once", async () => {
      const batch = batchOf(2);
      await log.publish(batch);
      await log.publish(batch);
      const marker = batchOf(1);
      await log.publish(marker);
      const got: UsageBatch[] = [];
      collect(got);
      await vi.waitFor(() => expect(got.map((b) => b.id)).toContain(marker.id), CI_POLL);
      expect(got.map((b) => b.id)).toEqual([batch.id, marker.id]);
    });

    it("delivers a batch again when its handler fails, and goes on afterwards", async () => {
      const failing = batchOf(1);
      const next = batchOf(1);
      let attempts = 0;
      const got: UsageBatch[] = [];
      collect(got, async (b) => {
        if (b.id === failing.id && ++attempts < 3) throw new Error("database down");
      });
      await log.publish(failing);
      await log.publish(next);
      await vi.waitFor(() => expect(got.map((b) => b.id)).toContain(next.id), { timeout: 10_000 });
      expect(attempts).toBe(3);
      expect(got.filter((b) => b.id === failing.id)).toHaveLength(1);
    });

    it("refuses a batch beyond its bound with UsageLogFullError, and takes one again once there is room", async () => {
      for (let i = 0; i < 5; i++) await log.publish(batchOf(1));
      await expect(log.publish(batchOf(1))).rejects.toBeInstanceOf(UsageLogFullError);
      const got: UsageBatch[] = [];
      collect(got);
      await vi.waitFor(() => expect(got).toHaveLength(5), CI_POLL);
      const again = batchOf(1);
      if (harness.freesRoomAfterAck) {
        await vi.waitFor(() => log.publish(again), CI_POLL);
      } else {
        await log.publish(again);
      }
      await vi.waitFor(() => expect(got).toHaveLength(6), CI_POLL);
      expect(got.at(-1)?.id).toBe(again.id);
    });

    it("stop() waits for the batch being handled and delivers nothing after", async () => {
      let release: () => void = () => {};
      const inHandler = new Promise<void>((resolve) => {
        const got: UsageBatch[] = [];
        collect(got, () => {
          resolve();
          return new Promise<void>((r) => {
            release = r;
          });
        });
      });
      await log.publish(batchOf(1));
      await inHandler;
      let stopped = false;
      const stopping = (consumer as UsageConsumer).stop().then(() => {
        stopped = true;
      });
      await new Promise((r) => setTimeout(r, 50));
      expect(stopped).toBe(false);
      release();
      await stopping;
      consumer = null;
    });
  });
}
