import { describe, expect, it } from "vitest";
import { StagingTable } from "../../src/staging/staging-table.js";

describe("StagingTable shares", () => {
  it("grows a reservation with its bytes and holds each tenant to its share", () => {
    const table = new StagingTable(1000, 400);
    table.open("a1", "a");
    expect(table.bytes).toBe(0);
    expect(table.grow("a1", 300)).toBeNull();
    expect(table.grow("a1", 101)).toBe("tenant-share");
    expect([table.bytes, table.bytesOf("a")]).toEqual([300, 300]);
    table.open("b1", "b");
    expect(table.grow("b1", 400)).toBeNull();
    table.open("open", null);
    expect(table.grow("open", 300)).toBeNull();
    // The whole area is said first: that is the node's condition, whoever asks.
    expect(table.grow("open", 1)).toBe("staging-full");
    expect(table.refusalFor("c", 1)).toBe("staging-full");
    table.release("a1");
    expect(table.bytesOf("a")).toBe(0);
    expect(table.refusalFor("a", 300)).toBeNull();
    for (const key of ["b1", "open"]) table.release(key);
    expect([table.bytes, table.size]).toEqual([0, 0]);
  });

  it("reserves an upfront part at admission and grows only past it", () => {
    const table = new StagingTable(1000, 1000);
    table.open("u", "a", 300);
    expect(table.bytes).toBe(300);
    expect(table.grow("u", 200)).toBeNull();
    expect(table.bytes).toBe(300);
    expect(table.grow("u", 150)).toBeNull();
    expect(table.bytes).toBe(350);
    table.open("v", "b", 600);
    expect(table.grow("u", 51)).toBe("staging-full");
    expect(table.bytes).toBe(950);
    table.fill("u", Buffer.alloc(350));
    expect(table.bytes).toBe(950);
    table.release("v");
    expect(table.bytes).toBe(350);
  });

  it("gives each tenant at least one upload of the largest size", () => {
    const config = { limits: { maxInputBytes: 25 }, staging: { maxBytes: 1000, tenantShare: 0.01 } };
    expect(StagingTable.fromConfig(config as never).tenantShareBytes).toBe(25);
    const big = { limits: { maxInputBytes: 25 }, staging: { maxBytes: 1000, tenantShare: 0.25 } };
    expect(StagingTable.fromConfig(big as never).tenantShareBytes).toBe(250);
  });
});
