import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RepeatedLog, repeatsNote } from "../../src/util/log-once.js";

describe("RepeatedLog", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes the first occurrence at once, then one line per interval with the count of the rest", () => {
    const log = new RepeatedLog(10_000);
    const written: string[] = [];
    const occur = (detail: string) =>
      log.report("disk", (repeats) => written.push(`${detail}${repeatsNote(repeats, log.intervalMs)}`));
    for (let i = 1; i <= 4281; i++) occur(`request ${i}`);
    expect(written).toEqual(["request 1"]);
    vi.advanceTimersByTime(10_000);
    // The summary carries the last occurrence's details.
    expect(written).toEqual(["request 1", "request 4281 (4280 more times in the last 10 s)"]);
    occur("request 4282");
    vi.advanceTimersByTime(10_000);
    expect(written.at(-1)).toBe("request 4282 (1 more time in the last 10 s)");
    // A quiet interval ends the burst: the next occurrence is written at once again.
    vi.advanceTimersByTime(10_000);
    expect(written).toHaveLength(3);
    occur("later");
    expect(written.at(-1)).toBe("later");
  });

  it("counts each key on its own and writes pending counts when closed", () => {
    const log = new RepeatedLog(10_000);
    const written: string[] = [];
    const occur = (key: string) => log.report(key, (repeats) => written.push(`${key} +${repeats}`));
    occur("spool");
    occur("database");
    occur("spool");
    occur("spool");
    expect(written).toEqual(["spool +0", "database +0"]);
    log.close();
    expect(written).toEqual(["spool +0", "database +0", "spool +2"]);
    vi.advanceTimersByTime(60_000);
    expect(written).toHaveLength(3);
  });
});
