import { describe, expect, it } from "vitest";
import { StopStack } from "../../src/app/stop-stack.js";

describe("StopStack", () => {
  it("stops what started, last first, when a later start fails, and rethrows the start's error", async () => {
    const stack = new StopStack();
    const stopped: string[] = [];
    const failure = new Error("port in use");
    const run = stack.orUnwind(async () => {
      stack.defer("lock", () => void stopped.push("lock"));
      await stack.start(
        "database",
        async () => "db",
        (db) => void stopped.push(db),
      );
      await stack.start(
        "queue",
        async () => "queue",
        (queue) => void stopped.push(queue),
      );
      await stack.start(
        "http-server",
        async () => {
          throw failure;
        },
        () => void stopped.push("http-server"),
      );
    });
    await expect(run).rejects.toBe(failure);
    // The part that failed to start is not stopped; everything before it is, in reverse.
    expect(stopped).toEqual(["queue", "db", "lock"]);
  });

  it("keeps stopping the rest when one part's stop throws, and names it in the log", async () => {
    const warnings: unknown[] = [];
    const stack = new StopStack({ warn: (object: unknown) => void warnings.push(object) });
    const stopped: string[] = [];
    stack.defer("first", () => void stopped.push("first"));
    stack.defer("broken", () => {
      throw new Error("stuck");
    });
    stack.defer("last", () => void stopped.push("last"));
    await stack.unwind();
    expect(stopped).toEqual(["last", "first"]);
    expect(warnings).toEqual([expect.objectContaining({ part: "broken" })]);
  });

  it("stops each part once, however often it is unwound, and refuses parts once stopping", async () => {
    const stack = new StopStack();
    let stops = 0;
    stack.defer("part", async () => {
      stops++;
    });
    await Promise.all([stack.unwind(), stack.unwind()]);
    await stack.unwind();
    expect(stops).toBe(1);
    expect(() => stack.defer("late", () => {})).toThrow(/stopping/);
  });
});
