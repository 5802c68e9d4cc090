import pino from "pino";
import { beforeEach, expect, it, vi } from "vitest";
import type { Database } from "../../src/db/database.js";
import { migrate } from "../../src/db/migrate.js";
import { MIGRATIONS } from "../../src/db/migrations.js";
import { ProblemError } from "../../src/errors/problem.js";
import { parseApiKey } from "../../src/identity/api-key.js";
import { IdentityAdmin } from "../../src/identity/identity-admin.js";
import { IdentityCache } from "../../src/identity/identity-cache.js";
import type { Actor } from "../../src/identity/model.js";
import { OutboxPublisher } from "../../src/identity/outbox-publisher.js";
import { MemoryKeyValue } from "../../src/kv/memory-kv.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { CI_POLL } from "../helpers/ci.js";
import { describeDatabases } from "../helpers/postgres.js";

const actor: Actor = { id: "key_admin", ip: "10.0.0.7", requestId: "req-1" };
const defaults = { ratePerSecond: 5, burst: 10, maxInFlight: 3, maxInputBytes: null, outputFormats: null };

async function problemOf(promise: Promise<unknown>): Promise<ProblemError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProblemError);
  return error as ProblemError;
}

async function count(db: Database, table: string): Promise<number> {
  const [row] = await db.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`);
  return row?.n ?? 0;
}

describeDatabases("identity repositories", (open) => {
  let db: Database;
  let admin: IdentityAdmin;
  beforeEach(async () => {
    db = await open();
    await migrate(db);
    admin = new IdentityAdmin({ db, defaults, onCommit: async () => {} });
  });

  it("applies the migrations once, and refuses a schema newer than it knows", async () => {
    expect(await migrate(db)).toEqual({ applied: [], version: MIGRATIONS.length });
    await db.query("INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')");
    await expect(migrate(db)).rejects.toThrow(/version 999 .* upgrade imgfleet/);
  });

  it("creates, finds, pages, updates, suspends and soft-deletes tenants", async () => {
    const acme = await admin.createTenant(actor, { name: "Acme", burst: 50 });
    expect(acme).toMatchObject({
      name: "Acme",
      status: "active",
      burst: 50,
      ratePerSecond: 5,
      maxInFlight: 3,
    });
    expect(acme.id).toMatch(/^ten_[0-9a-z]{26}$/);
    for (const name of ["Globex", "Initech", "Umbrella"]) await admin.createTenant(actor, { name });
    expect((await admin.listTenants({ search: "glob", limit: 10 })).map((t) => t.name)).toEqual(["Globex"]);
    const first = await admin.listTenants({ limit: 2 });
    const rest = await admin.listTenants({ limit: 10, after: first.at(-1)?.id });
    expect([...first, ...rest].map((t) => t.name)).toEqual(["Acme", "Globex", "Initech", "Umbrella"]);

    const updated = await admin.updateTenant(actor, acme.id, { ratePerSecond: 9, outputFormats: ["webp"] });
    expect(updated).toMatchObject({ ratePerSecond: 9, outputFormats: ["webp"], burst: 50 });
    expect((await admin.updateTenant(actor, acme.id, { status: "suspended" })).status).toBe("suspended");

    const { key } = await admin.createKey(actor, acme.id, {
      name: "web",
      scopes: ["resize"],
      expiresAt: null,
    });
    const deleted = await admin.deleteTenant(actor, acme.id);
    expect(deleted.status).toBe("deleted");
    expect(deleted.deletedAt).not.toBeNull();
    expect((await admin.getKey(acme.id, key.id)).revokedAt).not.toBeNull();
    expect((await admin.listTenants({ limit: 10 })).map((t) => t.name)).not.toContain("Acme");
    expect((await admin.listTenants({ limit: 10, includeDeleted: true })).map((t) => t.name)).toContain(
      "Acme",
    );
    expect((await problemOf(admin.updateTenant(actor, acme.id, { name: "x" }))).code).toBe("not-found");
    // The name of a deleted tenant is free again.
    expect((await admin.createTenant(actor, { name: "acme" })).name).toBe("acme");
  });

  it("refuses a duplicate name with a conflict, and the failed write leaves no trace", async () => {
    await admin.createTenant(actor, { name: "Acme" });
    const [outboxBefore, auditBefore] = [await count(db, "identity_outbox"), await count(db, "audit_log")];
    expect((await problemOf(admin.createTenant(actor, { name: "ACME" }))).code).toBe("conflict");
    expect(await count(db, "identity_outbox")).toBe(outboxBefore);
    expect(await count(db, "audit_log")).toBe(auditBefore);
  });

  it("issues keys whose secret is stored nowhere, scoped to their tenant", async () => {
    const a = await admin.createTenant(actor, { name: "A" });
    const b = await admin.createTenant(actor, { name: "B" });
    const issued = await admin.createKey(actor, a.id, {
      name: "web",
      scopes: ["resize", "usage:read"],
      expiresAt: null,
    });
    const parsed = parseApiKey(issued.secret);
    if (!parsed.ok) throw new Error("issued an unparseable key");
    const dump = JSON.stringify(await db.query("SELECT * FROM api_keys"));
    expect(dump).not.toContain(parsed.secret);
    expect(dump).toContain(issued.key.id);

    expect((await admin.listKeys(a.id, false)).map((k) => k.id)).toEqual([issued.key.id]);
    expect(await admin.listKeys(b.id, false)).toEqual([]);
    expect((await problemOf(admin.getKey(b.id, issued.key.id))).code).toBe("not-found");
    expect((await problemOf(admin.revokeKey(actor, b.id, issued.key.id))).code).toBe("not-found");
    expect((await problemOf(admin.rotateKey(actor, b.id, issued.key.id, 60))).code).toBe("not-found");

    const revoked = await admin.revokeKey(actor, a.id, issued.key.id);
    expect(revoked.revokedAt).not.toBeNull();
    expect(await admin.listKeys(a.id, false)).toEqual([]);
    expect(await admin.listKeys(a.id, true)).toHaveLength(1);
  });

  it("rotates a key: a successor with the same scopes, the old one valid for the grace period only", async () => {
    const t = await admin.createTenant(actor, { name: "A" });
    const { key } = await admin.createKey(actor, t.id, { name: "web", scopes: ["jobs"], expiresAt: null });
    const before = Date.now();
    const rotated = await admin.rotateKey(actor, t.id, key.id, 3600);
    expect(rotated.key).toMatchObject({ name: "web", scopes: ["jobs"], tenantId: t.id });
    expect(rotated.previous.replacedBy).toBe(rotated.key.id);
    const until = Date.parse(rotated.previous.expiresAt ?? "");
    expect(until).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
    expect(until).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
    expect((await problemOf(admin.rotateKey(actor, t.id, key.id, 60))).code).toBe("conflict");
  });

  it("records every admin write in the audit log with who, what and from where", async () => {
    const t = await admin.createTenant(actor, { name: "A" });
    await admin.updateTenant(actor, t.id, { burst: 7 });
    await admin.updateTenant(actor, t.id, { status: "suspended" });
    const { key } = await admin.createKey(actor, t.id, { name: "", scopes: ["resize"], expiresAt: null });
    await admin.rotateKey(actor, t.id, key.id, 10);
    await admin.revokeKey(actor, t.id, key.id);
    await admin.createAdminKey(actor, "ops", null);
    await admin.deleteTenant(actor, t.id);
    const entries = await admin.listAudit({ limit: 100 });
    expect(entries.map((e) => e.action).reverse()).toEqual([
      "tenant.create",
      "tenant.update",
      "tenant.suspend",
      "key.create",
      "key.rotate",
      "key.revoke",
      "admin-key.create",
      "tenant.delete",
    ]);
    for (const e of entries)
      expect(e).toMatchObject({ actor: "key_admin", sourceIp: "10.0.0.7", requestId: "req-1" });
    expect((await admin.listAudit({ limit: 100, action: "key" })).map((e) => e.action).sort()).toEqual([
      "key.create",
      "key.revoke",
      "key.rotate",
    ]);
    expect(await admin.listAudit({ limit: 100, tenantId: "ten_other" })).toEqual([]);
  });

  it("bootstraps one admin key on an empty database and never again; the last one cannot be revoked", async () => {
    const first = await admin.bootstrapAdminKey();
    expect(first?.key.scopes).toEqual(["admin"]);
    expect(await admin.bootstrapAdminKey()).toBeNull();
    const only = first?.key.id ?? "";
    expect((await problemOf(admin.revokeKey(actor, null, only))).code).toBe("conflict");
    await admin.createAdminKey(actor, "second", null);
    expect((await admin.revokeKey(actor, null, only)).revokedAt).not.toBeNull();
  });

  it("publishes every committed change through the outbox to the data plane, and resyncs at start", async () => {
    const metrics = createMetrics().identity;
    const kv = new MemoryKeyValue({ maxEntries: 1000, maxValueBytes: 16_384 });
    await kv.put("key.key_stale", JSON.stringify({ kind: "key", record: {}, committedAt: null }));
    const publisher = new OutboxPublisher({ db, kv, metrics, logger: pino({ level: "silent" }), pollMs: 50 });
    const live = new IdentityAdmin({ db, defaults, onCommit: () => publisher.poke() });
    const t = await live.createTenant(actor, { name: "A" });
    await publisher.start();
    const cache = new IdentityCache(kv, metrics);
    await cache.start();
    expect(cache.tenant(t.id)?.status).toBe("active");
    expect(cache.key("key_stale")).toBeUndefined();

    const { key } = await live.createKey(actor, t.id, { name: "", scopes: ["resize"], expiresAt: null });
    await vi.waitFor(() => expect(cache.key(key.id)?.scopes).toEqual(["resize"]), CI_POLL);
    await live.revokeKey(actor, t.id, key.id);
    await vi.waitFor(() => expect(cache.key(key.id)?.revokedAt).not.toBeNull(), CI_POLL);
    await live.updateTenant(actor, t.id, { status: "suspended" });
    await vi.waitFor(() => expect(cache.tenant(t.id)?.status).toBe("suspended"), CI_POLL);
    await live.deleteTenant(actor, t.id);
    await vi.waitFor(() => expect(cache.tenant(t.id)).toBeUndefined(), CI_POLL);
    expect(cache.stats().propagationMs.samples).toBeGreaterThan(0);
    await vi.waitFor(async () => expect(await count(db, "identity_outbox")).toBe(0), CI_POLL);

    // A change committed by another process (no poke) is picked up by polling.
    const other = new IdentityAdmin({ db, defaults, onCommit: async () => {} });
    const b = await other.createTenant(actor, { name: "B" });
    await vi.waitFor(() => expect(cache.tenant(b.id)).toBeDefined(), CI_POLL);
    cache.stop();
    await publisher.stop();
    await kv.close();
  });
});
