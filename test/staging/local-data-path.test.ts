import { describe, expect, it } from "vitest";
import { LocalDataPath } from "../../src/staging/local-data-path.js";
import { PendingResults } from "../../src/staging/pending-results.js";
import { StagingTable } from "../../src/staging/staging-table.js";
import { describeJobDataPath } from "./data-path.contract.js";

describeJobDataPath("in-process", async () => {
  const staging = new StagingTable(1024 * 1024);
  const pending = new PendingResults();
  return {
    path: new LocalDataPath(staging, pending),
    stage: (key, bytes) => {
      staging.reserve(key, bytes.length);
      staging.fill(key, bytes);
    },
    awaitResult: (jobId) => pending.wait(jobId, new AbortController().signal),
  };
});

describe("StagingTable", () => {
  it("refuses reservations beyond its byte bound and frees them on release", () => {
    const table = new StagingTable(1000);
    expect(table.reserve("a", 600)).toBe(true);
    expect(table.reserve("b", 600)).toBe(false);
    table.fill("a", Buffer.alloc(100));
    expect(table.bytes).toBe(100);
    expect(table.reserve("b", 600)).toBe(true);
    table.release("a");
    table.release("b");
    expect([table.bytes, table.size]).toEqual([0, 0]);
  });

  it("never lets filled bytes exceed their reservation", () => {
    const table = new StagingTable(1000);
    table.reserve("a", 10);
    expect(() => table.fill("a", Buffer.alloc(11))).toThrow(/exceed/);
    expect(() => table.fill("nope", Buffer.alloc(1))).toThrow(/not reserved/);
  });
});
