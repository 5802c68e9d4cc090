import { describe, expect, it } from "vitest";
import { configuredParts, partsOf, ROLE_PARTS } from "../../src/config/roles.js";
import { ROLES } from "../../src/config/schema.js";
import { useNode } from "../helpers/node.js";

describe("the role table", () => {
  it("gives each part to exactly one role, and embedded (all) runs every part", () => {
    const everyPart = ROLES.flatMap((role) => [...ROLE_PARTS[role]]);
    expect(new Set(everyPart).size).toBe(everyPart.length);
    expect([...partsOf(new Set(ROLES))].sort()).toEqual([...everyPart].sort());
  });

  it("runs only the parts of the configured roles", () => {
    expect([...partsOf(new Set(["worker"] as const))]).toEqual(["worker-pool"]);
    const apiAndControl = partsOf(new Set(["api", "control"] as const));
    expect(apiAndControl.has("metering")).toBe(true);
    expect(apiAndControl.has("usage-aggregator")).toBe(true);
    expect(apiAndControl.has("worker-pool")).toBe(false);
  });
});

describe("an embedded node", () => {
  const running = useNode();

  it("names the parts it runs in /readyz by the table's names", async () => {
    const { node, url } = running();
    const ready = (await (await fetch(`${url}/readyz`)).json()) as { parts: string[]; roles: string[] };
    expect(ready.roles).toEqual(["api", "worker", "control"]);
    expect(ready.parts).toEqual([...configuredParts(node.config)]);
    expect(ready.parts).toEqual(Object.values(ROLE_PARTS).flat());
  });
});
