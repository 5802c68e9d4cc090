import { beforeAll, describe, expect, it } from "vitest";
import type { ApiKey, AuditEntry, Tenant } from "../../src/contract/admin.js";
import type { Page } from "../../src/contract/common.js";
import { startNode, useNode } from "../helpers/node.js";

interface Problem {
  type: string;
  status: number;
  detail: string;
  errors?: string[];
  [extra: string]: unknown;
}

/** The contract's answers; a key as issued also carries its secret. */
type Key = ApiKey & { secret?: string };

const TENANT_ID = /^ten_[0-9a-z]{26}$/;
const KEY_ID = /^key_[0-9a-z]{26}$/;
const UNKNOWN_TENANT = "ten_00000000000000000000000000";
const UNKNOWN_KEY = "key_00000000000000000000000000";

async function problemOf(res: Response): Promise<Problem> {
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  return (await res.json()) as Problem;
}

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

/** Field names that would hold a secret or its hash: the API must never show one outside creation. */
function secretFields(key: object): string[] {
  return Object.keys(key).filter((k) => /secret|hash|sha/i.test(k));
}

describe("the admin API", () => {
  const node = useNode();
  let names = 0;
  const uniqueName = (prefix = "t") => `${prefix}-${Date.now().toString(36)}-${++names}`;
  const admin = (method: string, path: string, body?: unknown, key?: string) =>
    node().admin(method, path, body, key);
  const createTenant = async (body: Record<string, unknown> = {}) =>
    json<Tenant>(await admin("POST", "/tenants", { name: uniqueName(), ...body }), 201);
  const createKey = async (tenant: string, body: Record<string, unknown> = {}) =>
    json<Key & { secret: string }>(await admin("POST", `/tenants/${tenant}/keys`, body), 201);
  const audit = async (query = "") =>
    (await json<Page<AuditEntry>>(await admin("GET", `/audit?${query}`))).items;
  const formatsWith = (key: string) =>
    fetch(`${node().url}/v1/formats`, { headers: { authorization: `Bearer ${key}` } });

  describe("validation", () => {
    let tenant: Tenant;
    let key: Key;
    beforeAll(async () => {
      tenant = await createTenant();
      key = await createKey(tenant.id);
    });

    const past = new Date(Date.now() - 60_000).toISOString();
    const cases: [string, string, () => string, unknown, string][] = [
      ["POST /tenants without a name", "POST", () => "/tenants", {}, "name"],
      ["POST /tenants with an empty name", "POST", () => "/tenants", { name: "  " }, "name"],
      ["POST /tenants with burst 0", "POST", () => "/tenants", { name: "x", burst: 0 }, "burst"],
      [
        "POST /tenants with an unknown field",
        "POST",
        () => "/tenants",
        { name: "x", colour: "red" },
        "colour",
      ],
      [
        "POST /tenants with outputFormats [bmp]",
        "POST",
        () => "/tenants",
        { name: "x", outputFormats: ["bmp"] },
        "outputFormats",
      ],
      [
        "POST /tenants with maxInputBytes 10",
        "POST",
        () => "/tenants",
        { name: "x", maxInputBytes: 10 },
        "maxInputBytes",
      ],
      [
        "PATCH a tenant with status deleted",
        "PATCH",
        () => `/tenants/${tenant.id}`,
        { status: "deleted" },
        "status",
      ],
      [
        "PATCH a tenant with a negative rate",
        "PATCH",
        () => `/tenants/${tenant.id}`,
        { ratePerSecond: -1 },
        "ratePerSecond",
      ],
      [
        "POST keys with the admin scope",
        "POST",
        () => `/tenants/${tenant.id}/keys`,
        { scopes: ["admin"] },
        "scopes",
      ],
      ["POST keys with no scopes", "POST", () => `/tenants/${tenant.id}/keys`, { scopes: [] }, "scopes"],
      [
        "POST keys expiring in the past",
        "POST",
        () => `/tenants/${tenant.id}/keys`,
        { expiresAt: past },
        "expiresAt",
      ],
      [
        "POST keys expiring 'tomorrow'",
        "POST",
        () => `/tenants/${tenant.id}/keys`,
        { expiresAt: "tomorrow" },
        "expiresAt",
      ],
      [
        "POST rotate with graceSeconds -1",
        "POST",
        () => `/tenants/${tenant.id}/keys/${key.id}/rotate`,
        { graceSeconds: -1 },
        "graceSeconds",
      ],
      ["POST /admin-keys with an unknown field", "POST", () => "/admin-keys", { role: "root" }, "role"],
      ["GET /tenants?limit=0", "GET", () => "/tenants?limit=0", undefined, "limit"],
      ["GET /audit?since=yesterday", "GET", () => "/audit?since=yesterday", undefined, "since"],
    ];

    it.each(cases)("%s answers 400 invalid-body naming the field", async (_, method, path, body, field) => {
      const res = await admin(method, path(), body);
      expect(res.status).toBe(400);
      const problem = await problemOf(res);
      expect(problem.type).toBe("/problems/invalid-body");
      expect(Array.isArray(problem.errors)).toBe(true);
      expect(
        problem.errors?.some((e) => e.includes(field)),
        JSON.stringify(problem.errors),
      ).toBe(true);
      expect(problem.detail).toContain(field);
    });

    it("PATCH with an empty body answers 400 invalid-body asking for a field", async () => {
      const res = await admin("PATCH", `/tenants/${tenant.id}`, {});
      expect(res.status).toBe(400);
      const problem = await problemOf(res);
      expect(problem.type).toBe("/problems/invalid-body");
      expect(problem.errors).toEqual(["name at least one field to change"]);
    });

    it("refuses a body that is not JSON with a 4xx problem, and creates nothing", async () => {
      const name = uniqueName("not-json");
      for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
        const res = await fetch(`${node().url}/admin/v1/tenants`, {
          method: "POST",
          headers: { authorization: `Bearer ${node().adminKey}`, "content-type": type },
          body: `name=${name}`,
        });
        expect([400, 415], type).toContain(res.status);
        const problem = await problemOf(res);
        expect(["/problems/invalid-body", "/problems/unsupported-media-type"]).toContain(problem.type);
      }
      const found = await json<Page<Tenant>>(await admin("GET", `/tenants?search=${name}`));
      expect(found.items).toEqual([]);
    });

    it("refuses an image body on the admin API with 415 unsupported-media-type, asking for JSON", async () => {
      const res = await fetch(`${node().url}/admin/v1/tenants`, {
        method: "POST",
        headers: { authorization: `Bearer ${node().adminKey}`, "content-type": "image/jpeg" },
        body: '{"name":"sent-as-an-image"}',
      });
      expect(res.status).toBe(415);
      const problem = await problemOf(res);
      expect(problem.type).toBe("/problems/unsupported-media-type");
      expect(problem.detail).toContain("application/json");
    });

    it("answers malformed JSON with 400 bad-request", async () => {
      const res = await fetch(`${node().url}/admin/v1/tenants`, {
        method: "POST",
        headers: { authorization: `Bearer ${node().adminKey}`, "content-type": "application/json" },
        body: '{"name": "half',
      });
      expect(res.status).toBe(400);
      expect((await problemOf(res)).type).toBe("/problems/bad-request");
    });
  });

  describe("tenants", () => {
    it("creates a tenant: 201, Location, a ten_ id, the defaults for unset limits", async () => {
      const name = uniqueName("create");
      const res = await admin("POST", "/tenants", { name, burst: 7 });
      const tenant = await json<Tenant>(res, 201);
      expect(tenant.id).toMatch(TENANT_ID);
      expect(res.headers.get("location")).toBe(`/admin/v1/tenants/${tenant.id}`);
      const defaults = node().node.config.auth.tenantDefaults;
      expect(tenant).toMatchObject({
        name,
        status: "active",
        burst: 7,
        ratePerSecond: defaults.ratePerSecond,
        maxInFlight: defaults.maxInFlight,
        maxInputBytes: null,
        outputFormats: null,
        deletedAt: null,
      });
      const shown = await json<Tenant>(await admin("GET", `/tenants/${tenant.id}`));
      expect(shown).toEqual(tenant);
    });

    it("lists with search, and walking `next` with a limit returns every tenant exactly once", async () => {
      const prefix = uniqueName("page");
      const made: string[] = [];
      for (let i = 0; i < 7; i++) made.push((await createTenant({ name: `${prefix}-${i}` })).id);
      await createTenant({ name: uniqueName("other") });

      const seen: string[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const query: string = `/tenants?search=${prefix}&limit=3${after ? `&after=${after}` : ""}`;
        const page: Page<Tenant> = await json<Page<Tenant>>(await admin("GET", query));
        expect(page.items.length).toBeLessThanOrEqual(3);
        seen.push(...page.items.map((t) => t.id));
        after = page.next;
        pages++;
      } while (after !== null && pages < 10);
      expect(seen).toHaveLength(7);
      expect(new Set(seen)).toEqual(new Set(made));

      // Search is case-insensitive and also finds a tenant by its exact id.
      const upper = await json<Page<Tenant>>(await admin("GET", `/tenants?search=${prefix.toUpperCase()}-3`));
      expect(upper.items.map((t) => t.id)).toEqual([made[3]]);
      const byId = await json<Page<Tenant>>(await admin("GET", `/tenants?search=${made[5]}`));
      expect(byId.items.map((t) => t.id)).toEqual([made[5]]);
    });

    it("searches for the text as written: _ and % are not wildcards", async () => {
      const prefix = uniqueName("like");
      const literal = await createTenant({ name: `${prefix}-a_b 50%` });
      const lookalike = await createTenant({ name: `${prefix}-axb 500` });
      const underscore = await json<Page<Tenant>>(
        await admin("GET", `/tenants?search=${encodeURIComponent(`${prefix}-a_b`)}`),
      );
      expect(underscore.items.map((t) => t.id)).toEqual([literal.id]);
      const percent = await json<Page<Tenant>>(
        await admin("GET", `/tenants?search=${encodeURIComponent(`${prefix}-a%0`)}`),
      );
      expect(percent.items.map((t) => t.id)).toEqual([]);
      expect(lookalike.id).not.toBe(literal.id);
    });

    it("updates a tenant's limits and name", async () => {
      const tenant = await createTenant();
      const renamed = uniqueName("renamed");
      const updated = await json<Tenant>(
        await admin("PATCH", `/tenants/${tenant.id}`, {
          name: renamed,
          ratePerSecond: 2.5,
          burst: 9,
          maxInFlight: 3,
          maxInputBytes: 4096,
          outputFormats: ["webp", "png", "webp"],
        }),
      );
      expect(updated).toMatchObject({
        id: tenant.id,
        name: renamed,
        ratePerSecond: 2.5,
        burst: 9,
        maxInFlight: 3,
        maxInputBytes: 4096,
        outputFormats: ["webp", "png"],
        status: "active",
      });
      expect(await json<Tenant>(await admin("GET", `/tenants/${tenant.id}`))).toEqual(updated);
      // null gives a limit back to the node.
      const reset = await json<Tenant>(
        await admin("PATCH", `/tenants/${tenant.id}`, { maxInputBytes: null, outputFormats: null }),
      );
      expect(reset).toMatchObject({ maxInputBytes: null, outputFormats: null, burst: 9 });
    });

    it("answers 409 conflict for a duplicate name, whatever its case, on create and on rename", async () => {
      const first = await createTenant();
      const dup = await admin("POST", "/tenants", { name: first.name.toUpperCase() });
      expect(dup.status).toBe(409);
      expect((await problemOf(dup)).type).toBe("/problems/conflict");
      const other = await createTenant();
      const rename = await admin("PATCH", `/tenants/${other.id}`, { name: first.name });
      expect(rename.status).toBe(409);
      expect((await problemOf(rename)).type).toBe("/problems/conflict");
      expect((await json<Tenant>(await admin("GET", `/tenants/${other.id}`))).name).toBe(other.name);
    });

    it("deletes softly: shown as deleted, hidden from lists, its keys revoked, its name free again", async () => {
      const tenant = await createTenant();
      const keys = [await createKey(tenant.id), await createKey(tenant.id, { scopes: ["usage:read"] })];
      const deleted = await json<Tenant>(await admin("DELETE", `/tenants/${tenant.id}`));
      expect(deleted.status).toBe("deleted");
      expect(deleted.deletedAt).not.toBeNull();

      const shown = await json<Tenant>(await admin("GET", `/tenants/${tenant.id}`));
      expect(shown.status).toBe("deleted");
      const listed = await json<Page<Tenant>>(await admin("GET", `/tenants?search=${tenant.name}`));
      expect(listed.items).toEqual([]);
      const withDeleted = await json<Page<Tenant>>(
        await admin("GET", `/tenants?search=${tenant.name}&includeDeleted=true`),
      );
      expect(withDeleted.items.map((t) => [t.id, t.status])).toEqual([[tenant.id, "deleted"]]);

      const live = await json<Page<Key>>(await admin("GET", `/tenants/${tenant.id}/keys`));
      expect(live.items).toEqual([]);
      const all = await json<Page<Key>>(await admin("GET", `/tenants/${tenant.id}/keys?includeRevoked=true`));
      expect(all.items.map((k) => k.id).sort()).toEqual(keys.map((k) => k.id).sort());
      for (const k of all.items) expect(k.revokedAt).not.toBeNull();
      expect((await formatsWith(keys[0]?.secret ?? "")).status).toBe(401);

      // A deleted tenant takes no more changes.
      for (const [method, path, body] of [
        ["DELETE", `/tenants/${tenant.id}`, undefined],
        ["PATCH", `/tenants/${tenant.id}`, { burst: 2 }],
        ["POST", `/tenants/${tenant.id}/resume`, undefined],
        ["POST", `/tenants/${tenant.id}/keys`, {}],
      ] as const) {
        const res = await admin(method, path, body);
        expect(res.status, `${method} ${path}`).toBe(404);
      }
      const again = await admin("POST", "/tenants", { name: tenant.name });
      expect(again.status).toBe(201);
    });

    it.each([
      ["GET", `/tenants/${UNKNOWN_TENANT}`, undefined],
      ["PATCH", `/tenants/${UNKNOWN_TENANT}`, { burst: 2 }],
      ["DELETE", `/tenants/${UNKNOWN_TENANT}`, undefined],
      ["POST", `/tenants/${UNKNOWN_TENANT}/suspend`, undefined],
      ["GET", `/tenants/${UNKNOWN_TENANT}/keys`, undefined],
      ["POST", `/tenants/${UNKNOWN_TENANT}/keys`, {}],
      ["GET", `/tenants/${UNKNOWN_TENANT}/keys/${UNKNOWN_KEY}`, undefined],
      ["POST", `/tenants/${UNKNOWN_TENANT}/keys/${UNKNOWN_KEY}/revoke`, undefined],
      ["POST", `/admin-keys/${UNKNOWN_KEY}/revoke`, undefined],
    ])("%s %s answers 404 not-found", async (method, path, body) => {
      const res = await admin(method, path, body);
      expect(res.status).toBe(404);
      expect((await problemOf(res)).type).toBe("/problems/not-found");
    });

    it("answers 404 for an unknown key of a real tenant", async () => {
      const res = await admin("GET", `/tenants/${node().tenant}/keys/${UNKNOWN_KEY}`);
      expect(res.status).toBe(404);
      expect((await problemOf(res)).type).toBe("/problems/not-found");
    });
  });

  describe("keys", () => {
    it("answers the secret once, with Cache-Control: no-store, and never again", async () => {
      const tenant = await createTenant();
      const res = await admin("POST", `/tenants/${tenant.id}/keys`, {
        name: "web",
        scopes: ["resize", "jobs"],
      });
      const key = await json<Key & { secret: string }>(res, 201);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("location")).toBe(`/admin/v1/tenants/${tenant.id}/keys/${key.id}`);
      expect(key.id).toMatch(KEY_ID);
      expect(key.secret).toMatch(/^imf_/);
      expect(key).toMatchObject({
        tenantId: tenant.id,
        name: "web",
        scopes: ["resize", "jobs"],
        revokedAt: null,
      });
      expect((await formatsWith(key.secret)).status).toBe(200);

      const listed = await json<Page<Key>>(await admin("GET", `/tenants/${tenant.id}/keys`));
      expect(listed.items.map((k) => k.id)).toEqual([key.id]);
      const shown = await json<Key>(await admin("GET", `/tenants/${tenant.id}/keys/${key.id}`));
      for (const k of [...listed.items, shown]) {
        expect(secretFields(k)).toEqual([]);
        expect(JSON.stringify(k)).not.toContain(key.secret);
      }
      const { secret: _secret, ...withoutSecret } = key;
      expect(shown).toEqual(withoutSecret);
    });

    it("defaults a key to the resize scope, and lists revoked keys only when asked", async () => {
      const tenant = await createTenant();
      const kept = await createKey(tenant.id);
      expect(kept.scopes).toEqual(["resize"]);
      const gone = await createKey(tenant.id);
      const revoked = await json<Key>(await admin("POST", `/tenants/${tenant.id}/keys/${gone.id}/revoke`));
      expect(revoked.revokedAt).not.toBeNull();
      const live = await json<Page<Key>>(await admin("GET", `/tenants/${tenant.id}/keys`));
      expect(live.items.map((k) => k.id)).toEqual([kept.id]);
      const all = await json<Page<Key>>(await admin("GET", `/tenants/${tenant.id}/keys?includeRevoked=true`));
      expect(all.items.map((k) => k.id).sort()).toEqual([kept.id, gone.id].sort());
    });

    it("creates admin keys that are shown once and listed without secrets", async () => {
      const res = await admin("POST", "/admin-keys", { name: "ops" });
      const key = await json<Key & { secret: string }>(res, 201);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(key.id).toMatch(KEY_ID);
      expect(key.secret).toMatch(/^imf_/);
      expect(key).toMatchObject({ tenantId: null, name: "ops", scopes: ["admin"] });
      expect((await admin("GET", "/tenants", undefined, key.secret)).status).toBe(200);
      const listed = await json<Page<Key>>(await admin("GET", "/admin-keys"));
      expect(listed.items.map((k) => k.id)).toContain(key.id);
      for (const k of listed.items) {
        expect(secretFields(k)).toEqual([]);
        expect(JSON.stringify(k)).not.toContain(key.secret);
      }
    });
  });

  describe("audit trail", () => {
    let bootstrapId: string;
    beforeAll(async () => {
      const keys = await json<Page<Key>>(await admin("GET", "/admin-keys"));
      bootstrapId = keys.items.find((k) => k.name === "bootstrap")?.id ?? "";
      expect(bootstrapId).toMatch(KEY_ID);
    });

    /** The one audit entry written by the request that got this response. */
    const entryOf = async (res: Response): Promise<AuditEntry> => {
      const requestId = res.headers.get("x-request-id");
      expect(requestId).toBeTruthy();
      const entries = (await audit("limit=1000")).filter((e) => e.requestId === requestId);
      expect(entries, `audit entries of request ${requestId}`).toHaveLength(1);
      return entries[0] as AuditEntry;
    };

    it("records every admin write with its action, target, actor, source address and request id", async () => {
      const expectEntry = async (res: Response, action: string, target: string, tenantId: string | null) => {
        expect(res.status).toBeLessThan(300);
        expect(await entryOf(res)).toMatchObject({
          action,
          target,
          tenantId,
          actor: bootstrapId,
          sourceIp: "127.0.0.1",
        });
      };
      const created = await admin("POST", "/tenants", { name: uniqueName("audited") });
      const tenant = (await created.clone().json()) as Tenant;
      await expectEntry(created, "tenant.create", tenant.id, tenant.id);
      await expectEntry(
        await admin("PATCH", `/tenants/${tenant.id}`, { burst: 5 }),
        "tenant.update",
        tenant.id,
        tenant.id,
      );
      await expectEntry(
        await admin("POST", `/tenants/${tenant.id}/suspend`),
        "tenant.suspend",
        tenant.id,
        tenant.id,
      );

      const keyRes = await admin("POST", `/tenants/${tenant.id}/keys`, {});
      const key = (await keyRes.clone().json()) as Key;
      await expectEntry(keyRes, "key.create", key.id, tenant.id);
      const rotateRes = await admin("POST", `/tenants/${tenant.id}/keys/${key.id}/rotate`, {
        graceSeconds: 60,
      });
      const rotated = (await rotateRes.clone().json()) as Key;
      const rotation = await entryOf(rotateRes);
      expect(rotation).toMatchObject({
        action: "key.rotate",
        target: rotated.id,
        actor: bootstrapId,
        details: { previous: key.id, graceSeconds: 60 },
      });
      await expectEntry(
        await admin("POST", `/tenants/${tenant.id}/keys/${rotated.id}/revoke`),
        "key.revoke",
        rotated.id,
        tenant.id,
      );

      const adminKeyRes = await admin("POST", "/admin-keys", { name: "audited" });
      const adminKey = (await adminKeyRes.clone().json()) as Key & { secret: string };
      await expectEntry(adminKeyRes, "admin-key.create", adminKey.id, null);
      const revokeAdmin = await admin("POST", `/admin-keys/${adminKey.id}/revoke`);
      expect(revokeAdmin.status).toBe(200);
      expect(await entryOf(revokeAdmin)).toMatchObject({
        target: adminKey.id,
        tenantId: null,
        actor: bootstrapId,
      });
      await expectEntry(
        await admin("DELETE", `/tenants/${tenant.id}`),
        "tenant.delete",
        tenant.id,
        tenant.id,
      );

      // An entry made by another admin key names that key as the actor.
      const second = await json<Key & { secret: string }>(
        await admin("POST", "/admin-keys", { name: "second" }),
        201,
      );
      const byOther = await admin("POST", "/tenants", { name: uniqueName("by-other") }, second.secret);
      expect((await entryOf(byOther)).actor).toBe(second.id);
    });

    it("records resuming a tenant as tenant.resume", async () => {
      const tenant = await createTenant();
      await admin("POST", `/tenants/${tenant.id}/suspend`);
      const res = await admin("POST", `/tenants/${tenant.id}/resume`);
      expect(res.status).toBe(200);
      expect(await entryOf(res)).toMatchObject({ action: "tenant.resume", target: tenant.id });
    });

    it("records revoking an admin key as admin-key.revoke, so action=admin-key shows its whole life", async () => {
      const key = await json<Key>(await admin("POST", "/admin-keys", { name: "short-lived" }), 201);
      const res = await admin("POST", `/admin-keys/${key.id}/revoke`);
      expect(res.status).toBe(200);
      expect(await entryOf(res)).toMatchObject({ action: "admin-key.revoke", target: key.id });
      const lifecycle = (await audit("action=admin-key&limit=1000")).filter((e) => e.target === key.id);
      expect(lifecycle.map((e) => e.action).sort()).toEqual(["admin-key.create", "admin-key.revoke"]);
    });

    it("filters by tenant and by action (exact or by prefix)", async () => {
      const a = await createTenant();
      const b = await createTenant();
      const keyA = await createKey(a.id);
      await admin("POST", `/tenants/${a.id}/keys/${keyA.id}/revoke`);
      await admin("PATCH", `/tenants/${b.id}`, { burst: 3 });

      const ofA = await audit(`tenant=${a.id}&limit=1000`);
      expect(ofA.map((e) => e.action).sort()).toEqual(["key.create", "key.revoke", "tenant.create"]);
      expect(ofA.every((e) => e.tenantId === a.id)).toBe(true);

      const revokes = await audit("action=key.revoke&limit=1000");
      expect(revokes.length).toBeGreaterThan(0);
      expect(revokes.every((e) => e.action === "key.revoke")).toBe(true);
      expect(revokes.map((e) => e.target)).toContain(keyA.id);

      const tenantActions = await audit("action=tenant&limit=1000");
      expect(tenantActions.every((e) => e.action.startsWith("tenant."))).toBe(true);
      expect(tenantActions.map((e) => e.target)).toEqual(expect.arrayContaining([a.id, b.id]));

      const both = await audit(`tenant=${b.id}&action=tenant.update`);
      expect(both.map((e) => [e.action, e.target])).toEqual([["tenant.update", b.id]]);
    });

    it("writes no entry for a refused change", async () => {
      const existing = await createTenant();
      const before = (await audit("limit=1000")).length;
      const refused = [
        await admin("POST", "/tenants", {}),
        await admin("POST", "/tenants", { name: existing.name }),
        await admin("PATCH", `/tenants/${existing.id}`, { burst: 0 }),
        await admin("PATCH", `/tenants/${UNKNOWN_TENANT}`, { burst: 2 }),
        await admin("POST", `/tenants/${existing.id}/keys`, { scopes: ["admin"] }),
        await admin("POST", "/admin-keys", { colour: "red" }),
      ];
      expect(refused.map((r) => r.status)).toEqual([400, 409, 400, 404, 400, 400]);
      expect((await audit("limit=1000")).length).toBe(before);
    });
  });

  describe("tenant isolation", () => {
    it("answers 404 for another tenant's key under this tenant's path, and leaves that key alone", async () => {
      const a = await createTenant();
      const b = await createTenant();
      const keyB = await createKey(b.id);
      for (const [method, path, body] of [
        ["GET", `/tenants/${a.id}/keys/${keyB.id}`, undefined],
        ["POST", `/tenants/${a.id}/keys/${keyB.id}/revoke`, undefined],
        ["DELETE", `/tenants/${a.id}/keys/${keyB.id}`, undefined],
        ["POST", `/tenants/${a.id}/keys/${keyB.id}/rotate`, { graceSeconds: 0 }],
        // A tenant key is not an admin key either.
        ["POST", `/admin-keys/${keyB.id}/revoke`, undefined],
      ] as const) {
        const res = await admin(method, path, body);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect((await problemOf(res)).type).toBe("/problems/not-found");
      }
      const shown = await json<Key>(await admin("GET", `/tenants/${b.id}/keys/${keyB.id}`));
      expect(shown).toMatchObject({ revokedAt: null, replacedBy: null, expiresAt: null });
      expect((await formatsWith(keyB.secret)).status).toBe(200);
      expect((await audit(`tenant=${b.id}&action=key.revoke`)).length).toBe(0);
    });
  });
});

describe("admin keys", () => {
  it("refuses to revoke the last admin key; once another exists the first can go and is then refused", async () => {
    const { admin, adminKey } = await startNode();
    const list = (await (await admin("GET", "/admin-keys")).json()) as Page<Key>;
    expect(list.items).toHaveLength(1);
    const first = list.items[0] as Key;

    const refused = await admin("POST", `/admin-keys/${first.id}/revoke`);
    expect(refused.status).toBe(409);
    const problem = await problemOf(refused);
    expect(problem.type).toBe("/problems/conflict");
    expect(problem.detail).toContain("last admin key");
    expect((await admin("GET", "/tenants")).status).toBe(200);

    const second = (await (await admin("POST", "/admin-keys", { name: "successor" })).json()) as Key & {
      secret: string;
    };
    const revoked = await admin("POST", `/admin-keys/${first.id}/revoke`, undefined, second.secret);
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as Key).revokedAt).not.toBeNull();

    const withOld = await admin("GET", "/tenants", undefined, adminKey);
    expect(withOld.status).toBe(401);
    expect((await problemOf(withOld)).type).toBe("/problems/api-key-revoked");
    expect((await admin("GET", "/tenants", undefined, second.secret)).status).toBe(200);
    // The successor is now the last one.
    const last = await admin("POST", `/admin-keys/${second.id}/revoke`, undefined, second.secret);
    expect(last.status).toBe(409);
  });
});
