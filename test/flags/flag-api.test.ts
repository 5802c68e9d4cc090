import sharp from "sharp";
import { describe, expect, it, onTestFinished } from "vitest";
import { type CliRun as Run, runAgainst } from "../helpers/cli.js";
import { solidImage } from "../helpers/images.js";
import { startNode, useNode } from "../helpers/node.js";

/**
 * Feature flags through the admin API and the CLI on a real node, and the
 * switch they exist for: `format=auto` answers AVIF only to tenants the
 * `avif-auto` flag is on for.
 */

const node = useNode();
const BROWSER_ACCEPT = "image/avif,image/webp,*/*";

interface FlagJson {
  name: string;
  description: string;
  default: boolean;
  percentage: number;
  tenants: Record<string, boolean>;
  updatedAt: string | null;
  updatedBy: string | null;
  known: boolean;
  stored: boolean;
}

async function json<T>(response: Response, status = 200): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

/** Every test leaves avif-auto at its built-in settings. */
function resetAfter(): void {
  onTestFinished(async () => void (await node().admin("DELETE", "/flags/avif-auto")));
}

async function newTenantKey(name: string): Promise<{ id: string; key: string }> {
  const tenant = await json<{ id: string }>(await node().admin("POST", "/tenants", { name }), 201);
  const issued = await json<{ secret: string }>(
    await node().admin("POST", `/tenants/${tenant.id}/keys`, { scopes: ["resize"] }),
    201,
  );
  return { id: tenant.id, key: issued.secret };
}

/** The same request each time: format=auto from a browser that accepts AVIF and WebP. */
async function autoFormat(url: string, key: string | null): Promise<string> {
  const response = await fetch(`${url}/v1/resize?w=32&format=auto`, {
    method: "POST",
    headers: {
      "content-type": "image/jpeg",
      accept: BROWSER_ACCEPT,
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: await solidImage(64, 64),
  });
  const body = Buffer.from(await response.arrayBuffer());
  expect(response.status, body.toString()).toBe(200);
  expect(response.headers.get("vary")).toBe("Accept");
  const type = response.headers.get("content-type") ?? "";
  // What the bytes are, not only what the header says (sharp reports AVIF as heif).
  expect((await sharp(body).metadata()).format).toBe(type === "image/avif" ? "heif" : type.split("/")[1]);
  return type;
}

/** `imgfleet <args>` from source, pointed at the test node through the environment. */
const cli = (...args: string[]): Promise<Run> => runAgainst(node(), args);

describe("the avif-auto flag over HTTP", () => {
  it("answers WebP while the flag is off, AVIF once it is on for the tenant, and WebP to another tenant at 0%", async () => {
    resetAfter();
    const { url } = node();
    const other = await newTenantKey("flag other tenant");
    expect(await autoFormat(url, node().apiKey)).toBe("image/webp");

    const on = await json<FlagJson>(
      await node().admin("PUT", `/flags/avif-auto/tenants/${node().tenant}`, { enabled: true }),
    );
    expect(on).toMatchObject({ name: "avif-auto", percentage: 0, default: false, stored: true, known: true });
    expect(on.tenants).toEqual({ [node().tenant]: true });
    expect(await autoFormat(url, node().apiKey)).toBe("image/avif");
    expect(await autoFormat(url, other.key)).toBe("image/webp");

    // A full rollout reaches the other tenant; the first keeps its override either way.
    await json(await node().admin("PUT", "/flags/avif-auto", { percentage: 100 }));
    expect(await autoFormat(url, other.key)).toBe("image/avif");
    await json(await node().admin("PUT", `/flags/avif-auto/tenants/${node().tenant}`, { enabled: false }));
    expect(await autoFormat(url, node().apiKey)).toBe("image/webp");

    // Deleting the settings puts everyone back on the built-in default (off).
    await json(await node().admin("DELETE", "/flags/avif-auto"));
    expect(await autoFormat(url, other.key)).toBe("image/webp");
  });

  it("leaves an explicit format=avif alone", async () => {
    const response = await node().post("/v1/resize?w=32&format=avif", await solidImage(64, 64));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/avif");
  });

  it("keeps anonymous requests (auth.mode none) on the flag's default", async () => {
    const open = await startNode({ auth: { mode: "none" } });
    const admin = open.admin;
    await json(await admin("PUT", "/flags/avif-auto", { percentage: 100 }));
    expect(await autoFormat(open.url, null)).toBe("image/webp");
    await json(await admin("PUT", "/flags/avif-auto", { default: true }));
    expect(await autoFormat(open.url, null)).toBe("image/avif");
  });
});

describe("/admin/v1/flags", () => {
  it("lists known flags with their built-in settings before anything is stored", async () => {
    const { items } = await json<{ items: FlagJson[] }>(await node().admin("GET", "/flags"));
    const avif = items.find((f) => f.name === "avif-auto");
    expect(avif).toMatchObject({ default: false, percentage: 0, tenants: {}, known: true, stored: false });
    expect(avif?.description).toMatch(/AVIF/);
    expect(await json<FlagJson>(await node().admin("GET", "/flags/avif-auto"))).toEqual(avif);
  });

  it("answers this node's evaluation for ?tenant=, with the reason", async () => {
    resetAfter();
    const path = `/flags/avif-auto?tenant=${node().tenant}`;
    const before = await json<Record<string, unknown>>(await node().admin("GET", path));
    expect(before).toEqual({
      flag: "avif-auto",
      tenant: node().tenant,
      value: false,
      reason: "default",
      node: node().node.adapters.nodeId,
      revision: null,
    });
    await json(await node().admin("PUT", "/flags/avif-auto", { percentage: 100 }));
    expect(await json(await node().admin("GET", path))).toMatchObject({ value: true, reason: "percentage" });
  });

  it("audits every change and records it as a flag.changed event", async () => {
    resetAfter();
    const actor = node().node.identity.bootstrapKey?.key.id;
    await json(await node().admin("PUT", "/flags/avif-auto", { percentage: 12.5, description: "trial" }));
    const updated = await json<FlagJson>(
      await node().admin("PUT", `/flags/avif-auto/tenants/${node().tenant}`, { enabled: true }),
    );
    expect(updated).toMatchObject({ percentage: 12.5, description: "trial", updatedBy: actor });
    expect(Date.parse(updated.updatedAt ?? "")).toBeGreaterThan(Date.now() - 60_000);
    await json(await node().admin("DELETE", `/flags/avif-auto/tenants/${node().tenant}`));

    const audit = await json<{
      items: { action: string; target: string; tenantId: string | null; actor: string }[];
    }>(await node().admin("GET", "/audit?action=flag&limit=3"));
    expect(audit.items.map((e) => [e.action, e.target, e.tenantId, e.actor])).toEqual([
      ["flag.tenant.unset", "avif-auto", node().tenant, actor],
      ["flag.tenant.set", "avif-auto", node().tenant, actor],
      ["flag.set", "avif-auto", null, actor],
    ]);
    const events = await json<{
      items: { kind: string; message: string; details: Record<string, unknown> }[];
    }>(await node().admin("GET", "/events?kind=flag.changed&limit=3"));
    expect(events.items.map((e) => e.message)).toEqual([
      expect.stringMatching(/^flag avif-auto: override for tenant ten_\w+ removed \(it was on\)/),
      expect.stringMatching(/^flag avif-auto: on for tenant ten_\w+/),
      expect.stringMatching(/^flag avif-auto: rollout 0% → 12.5%, description changed/),
    ]);
  });

  it("refuses bad settings with the field, and unknown tenants, overrides and flags with 404", async () => {
    resetAfter();
    const bad = async (method: string, path: string, body: unknown, field: RegExp) => {
      const p = await json<{ type: string; errors: string[] }>(await node().admin(method, path, body), 400);
      expect(p.type).toBe("/problems/invalid-body");
      expect(p.errors.join("\n")).toMatch(field);
    };
    await bad("PUT", "/flags/avif-auto", { percentage: 101 }, /^percentage:/);
    await bad("PUT", "/flags/avif-auto", { percentage: 1.234 }, /percentage: must have at most two decimals/);
    await bad("PUT", "/flags/avif-auto", { default: "yes" }, /^default:/);
    await bad("PUT", "/flags/avif-auto", { rollout: 5 }, /rollout/);
    await bad("PUT", "/flags/avif-auto", {}, /at least one of default, percentage, description/);
    await bad("PUT", "/flags/Not_Kebab", { default: true }, /^name:/);
    await bad("PUT", `/flags/avif-auto/tenants/${node().tenant}`, { enabled: 1 }, /^enabled:/);

    const notFound = async (method: string, path: string, body?: unknown) => {
      const p = await json<{ type: string; detail: string }>(await node().admin(method, path, body), 404);
      expect(p.type).toBe("/problems/not-found");
      return p.detail;
    };
    expect(
      await notFound("PUT", "/flags/avif-auto/tenants/ten_00000000000000000000000000", { enabled: true }),
    ).toMatch(/tenant/);
    expect(await notFound("DELETE", `/flags/avif-auto/tenants/${node().tenant}`)).toMatch(/no override/);
    expect(await notFound("DELETE", "/flags/avif-auto")).toMatch(/built-in default/);
    expect(await notFound("GET", "/flags/no-such-flag")).toMatch(/avif-auto/);
    // Nothing was stored by the refused requests.
    expect(await json(await node().admin("GET", "/flags/avif-auto"))).toMatchObject({ stored: false });
  });

  it("stores settings for a flag this version does not know, marked as unknown", async () => {
    onTestFinished(async () => void (await node().admin("DELETE", "/flags/future-thing")));
    const stored = await json<FlagJson>(await node().admin("PUT", "/flags/future-thing", { default: true }));
    expect(stored).toMatchObject({ name: "future-thing", known: false, stored: true, default: true });
    const { items } = await json<{ items: FlagJson[] }>(await node().admin("GET", "/flags"));
    expect(items.map((f) => f.name)).toEqual(["avif-auto", "future-thing"]);
  });

  it("needs an admin key", async () => {
    const response = await fetch(`${node().url}/admin/v1/flags`, { headers: node().auth });
    expect(response.status).toBe(403);
  });
});

describe("imgfleet flags", () => {
  it("sets a tenant override and a rollout, lists them, and unsets them", async () => {
    resetAfter();
    const tenant = node().tenant;
    const on = await cli("flags", "set", "avif-auto", "--tenant", tenant, "--on", "--json");
    expect(on.code, on.stderr).toBe(0);
    expect(JSON.parse(on.stdout)).toMatchObject({ name: "avif-auto", tenants: { [tenant]: true } });

    const rollout = await cli("flags", "set", "avif-auto", "--percentage", "25", "--default", "off");
    expect(rollout.code, rollout.stderr).toBe(0);
    expect(rollout.stdout).toMatch(/rollout\s+25% of tenants/);
    expect(rollout.stdout).toContain(`${tenant}=on`);

    const list = await cli("flags", "list");
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^FLAG\s+DEFAULT\s+ROLLOUT\s+OVERRIDES/);
    expect(list.stdout).toMatch(/avif-auto\s+off\s+25%\s+1 on, 0 off/);

    const unset = await cli("flags", "unset", "avif-auto", "--tenant", tenant, "--quiet");
    expect(unset.code, unset.stderr).toBe(0);
    expect(unset.stdout).toBe("avif-auto\n");
    expect(await json(await node().admin("GET", "/flags/avif-auto"))).toMatchObject({
      tenants: {},
      percentage: 25,
    });
  });

  it("explains a call that cannot work, with exit code 2 (usage) or 1 (refused)", async () => {
    const noTenant = await cli("flags", "set", "avif-auto", "--on");
    expect(noTenant.code).toBe(2);
    expect(noTenant.stderr).toMatch(/--tenant/);
    const bad = await cli("flags", "set", "avif-auto", "--percentage", "150");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/percentage: .*\(--percentage\)/);
  });
});
