import { describe, expect, it } from "vitest";
import { isCI } from "./ci.js";

describe("isCI", () => {
  it.each(["true", "1", "yes", "TRUE", "github-actions", " true "])("CI=%j is CI", (value) => {
    expect(isCI({ CI: value })).toBe(true);
  });

  it.each(["false", "0", "FALSE", " False ", "", "  "])("CI=%j is not CI", (value) => {
    expect(isCI({ CI: value })).toBe(false);
  });

  it("an unset CI is not CI", () => {
    expect(isCI({})).toBe(false);
  });
});
