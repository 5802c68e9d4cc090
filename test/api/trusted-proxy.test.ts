import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";
import { loadConfig } from "../../src/config/load.js";
import { startNode } from "../helpers/node.js";

const CLIENT = "203.0.113.7";

/** Creates a tenant as if through a load balancer that reports CLIENT, and returns the audited source address. */
async function auditedSource(trustProxy: string[]): Promise<string | null> {
  const node = await startNode({ server: { trustProxy } });
  const res = await fetch(`${node.url}/admin/v1/tenants`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${node.adminKey}`,
      "content-type": "application/json",
      "x-forwarded-for": CLIENT,
    },
    body: JSON.stringify({ name: "behind a proxy" }),
  });
  expect(res.status).toBe(201);
  const requestId = res.headers.get("x-request-id");
  const audit = (await (await node.admin("GET", "/audit?action=tenant.create")).json()) as {
    items: { requestId: string; sourceIp: string | null }[];
  };
  return audit.items.find((e) => e.requestId === requestId)?.sourceIp ?? null;
}

describe("server.trustProxy", () => {
  it("records the client's address from X-Forwarded-For when the proxy is trusted", async () => {
    expect(await auditedSource(["127.0.0.1"])).toBe(CLIENT);
  });

  it("ignores X-Forwarded-For from anyone not listed: the peer's address is recorded", async () => {
    expect(await auditedSource([])).toBe("127.0.0.1");
    expect(await auditedSource(["10.0.0.0/8"])).toBe("127.0.0.1");
  });

  it("accepts addresses, CIDRs and the named ranges, and refuses anything else by name", () => {
    const load = (value: string) =>
      loadConfig({ env: { IMGFLEET_SERVER__TRUST_PROXY: value }, overrides: {} });
    expect(load("10.0.0.10, 10.0.0.0/8,::1,fd00::/8,loopback").server.trustProxy).toEqual([
      "10.0.0.10",
      "10.0.0.0/8",
      "::1",
      "fd00::/8",
      "loopback",
    ]);
    for (const bad of ["haproxy.internal", "10.0.0.0/33", "10.0.0.1/8/2"]) {
      expect(() => load(bad)).toThrow(ConfigError);
      expect(() => load(bad)).toThrow(/IMGFLEET_SERVER__TRUST_PROXY|server\.trustProxy/);
    }
  });
});
