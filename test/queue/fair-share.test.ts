import { describe, expect, it } from "vitest";
import type { Delivery } from "../../src/queue/job-queue.js";
import { MemoryJobQueue } from "../../src/queue/memory-queue.js";
import { message } from "./job-queue.contract.js";

const signal = () => new AbortController().signal;

async function pullAll(queue: MemoryJobQueue, count: number): Promise<Delivery[]> {
  const got: Delivery[] = [];
  for (let i = 0; i < count; i++) {
    const d = await queue.pull(signal());
    if (d) got.push(d);
  }
  return got;
}

describe("the embedded queue shares workers between tenants by cost", () => {
  it("a tenant whose jobs cost seconds does not keep a cheap tenant's jobs behind its backlog", async () => {
    const queue = new MemoryJobQueue({ capacity: 100, maxAttempts: 2 });
    const expensive = Array.from({ length: 6 }, () => message({ tenant: "ten_heavy" }));
    for (const m of expensive) await queue.enqueue(m);
    // The first heavy job runs and costs 10 s of CPU (a timeout, measured by the supervisor).
    const [first] = await pullAll(queue, 1);
    first?.spent(10_000);
    await first?.term();
    const cheap = Array.from({ length: 3 }, () => message({ tenant: "ten_light" }));
    for (const m of cheap) await queue.enqueue(m);
    const order = (await pullAll(queue, 8)).map((d) => d.message.tenant);
    // FIFO would serve the five heavy jobs first; by cost, the light tenant's three come next.
    expect(order.slice(0, 3)).toEqual(["ten_light", "ten_light", "ten_light"]);
    expect(order.slice(3)).toEqual(Array(5).fill("ten_heavy"));
  });

  it("a tenant with a backlog is charged for jobs on workers before their cost is known", async () => {
    const queue = new MemoryJobQueue({ capacity: 100, maxAttempts: 2 });
    for (let i = 0; i < 4; i++) await queue.enqueue(message({ tenant: "ten_a" }));
    const [a1] = await pullAll(queue, 1);
    a1?.spent(5_000);
    await a1?.ack();
    // Two more heavy jobs go to workers (charged by ten_a's average cost) before any light job arrives.
    const running = await pullAll(queue, 2);
    for (let i = 0; i < 2; i++) await queue.enqueue(message({ tenant: "ten_b" }));
    const next = await pullAll(queue, 3);
    expect(next.map((d) => d.message.tenant)).toEqual(["ten_b", "ten_b", "ten_a"]);
    expect(running.map((d) => d.message.tenant)).toEqual(["ten_a", "ten_a"]);
  });

  it("with equal costs, tenants alternate instead of one draining its backlog first", async () => {
    const queue = new MemoryJobQueue({ capacity: 100, maxAttempts: 2 });
    for (let i = 0; i < 4; i++) await queue.enqueue(message({ tenant: "ten_a" }));
    for (let i = 0; i < 4; i++) await queue.enqueue(message({ tenant: "ten_b" }));
    const order: (string | null)[] = [];
    for (let i = 0; i < 8; i++) {
      const [d] = await pullAll(queue, 1);
      order.push(d?.message.tenant ?? null);
      d?.spent(20);
      await d?.ack();
    }
    expect(order.slice(0, 4).sort()).toEqual(["ten_a", "ten_a", "ten_b", "ten_b"]);
    expect(order.slice(4).sort()).toEqual(["ten_a", "ten_a", "ten_b", "ten_b"]);
  });

  it("a requeued job keeps its place at the head of its tenant's line and is not charged", async () => {
    const queue = new MemoryJobQueue({ capacity: 100, maxAttempts: 1 });
    const [m1, m2] = [message({ tenant: "ten_a" }), message({ tenant: "ten_a" })];
    await queue.enqueue(m1);
    await queue.enqueue(m2);
    const [d1] = await pullAll(queue, 1);
    expect(await d1?.requeue()).toBe(true);
    const [again] = await pullAll(queue, 1);
    expect([again?.message.id, again?.attempt]).toEqual([m1.id, 1]);
  });
});
