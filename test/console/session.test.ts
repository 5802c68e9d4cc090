import { describe, expect, it } from "vitest";
import { apiKeyToken, parseApiKey } from "../../src/identity/api-key.js";
import { storageKey } from "../../src/session/sessions.js";
import { type RunningNode, startNode, useNode } from "../helpers/node.js";

/**
 * Console sessions over real HTTP on a real node: sign-in exchanges an admin
 * key for a cookie, the cookie authenticates the admin API with a CSRF token
 * on writes, and sessions end (idle, lifetime, sign-out, revoked key).
 */

interface Problem {
  type: string;
  status: number;
  detail: string;
  reason?: string;
}

interface SessionView {
  keyId: string;
  csrfToken: string;
  idleTimeoutMs: number;
  expiresAt: string;
}

interface Signed {
  cookie: string;
  setCookie: string;
  view: SessionView;
}

const CLUSTER_SECRET = "cluster-secret-0123456789abcdefghijklmnop";

/** The same key id with another secret (and a correct checksum): a guess at that key's secret. */
function wrongSecretOf(token: string): string {
  const parsed = parseApiKey(token);
  if (!parsed.ok) throw new Error("expected a well-formed key");
  return apiKeyToken(parsed.id.slice("key_".length), "x".repeat(43));
}

async function signIn(n: RunningNode, adminKey = n.adminKey, headers: Record<string, string> = {}) {
  return fetch(`${n.url}/admin/v1/session`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ adminKey }),
  });
}

async function signedIn(n: RunningNode, adminKey = n.adminKey): Promise<Signed> {
  const res = await signIn(n, adminKey);
  expect(res.status).toBe(201);
  const setCookie = res.headers.get("set-cookie") ?? "";
  return { setCookie, cookie: setCookie.split(";")[0] ?? "", view: (await res.json()) as SessionView };
}

/** An admin API call the way the console's page makes it: the cookie, and the token when given. */
function call(n: RunningNode, s: Signed, method: string, path: string, body?: unknown, csrf?: string) {
  return fetch(`${n.url}/admin/v1${path}`, {
    method,
    headers: {
      cookie: s.cookie,
      ...(csrf === undefined ? {} : { "x-csrf-token": csrf }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function problem(res: Response): Promise<Problem> {
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  return (await res.json()) as Problem;
}

/** Rewrites a session's record in the sessions bucket: time passes without the test sleeping. */
async function age(n: RunningNode, s: Signed, fields: { createdAt?: number; lastSeenAt?: number }) {
  const kv = n.node.adapters.sessionsKv;
  const key = storageKey(decodeURIComponent(s.cookie.split("=")[1] ?? ""));
  const value = await kv.get(key);
  if (value === null) throw new Error("the session is not in the bucket");
  await kv.put(key, JSON.stringify({ ...JSON.parse(value), ...fields }));
}

describe("console sessions", () => {
  const node = useNode({
    // These tests sign in often from one address; the limit itself is tested below.
    console: { signInsPerMinute: 1000 },
    fleet: { clusterSecret: CLUSTER_SECRET },
    ops: { webhooks: [{ name: "chat", kind: "slack", url: "https://hooks.example.com/T0/B0/secretpath" }] },
  });

  it("exchanges an admin key for an HttpOnly, SameSite=Strict cookie and a CSRF token", async () => {
    const n = node();
    const s = await signedIn(n);
    expect(s.setCookie).toMatch(/^imgfleet_session=[A-Za-z0-9_-]{43}; /);
    const attributes = s.setCookie.split("; ").slice(1);
    expect(attributes).toEqual(expect.arrayContaining(["Path=/", "HttpOnly", "SameSite=Strict"]));
    expect(attributes).not.toContain("Secure");
    expect(attributes).toContain(`Max-Age=${12 * 3600}`);
    expect(s.view.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.view.idleTimeoutMs).toBe(30 * 60_000);
    const keys = (await (await n.admin("GET", "/admin-keys")).json()) as { items: { id: string }[] };
    expect(keys.items.map((k) => k.id)).toContain(s.view.keyId);

    // Reads need only the cookie; GET /session gives the token back to a reloaded page.
    expect((await call(n, s, "GET", "/tenants")).status).toBe(200);
    const current = await call(n, s, "GET", "/session");
    expect(current.status).toBe(200);
    expect(current.headers.get("cache-control")).toBe("no-store");
    expect(((await current.json()) as SessionView).csrfToken).toBe(s.view.csrfToken);

    // The bucket holds the id's hash, never the id itself.
    const stored = await n.node.adapters.sessionsKv.keys();
    const id = s.cookie.split("=")[1] ?? "";
    expect(stored).toContain(storageKey(id));
    expect(stored.some((k) => k.includes(id))).toBe(false);
    expect(JSON.stringify(await n.node.adapters.sessionsKv.entries())).not.toContain(id);
  });

  it("marks the cookie Secure when the request came over TLS (X-Forwarded-Proto)", async () => {
    const n = node();
    const res = await signIn(n, n.adminKey, { "x-forwarded-proto": "https" });
    expect(res.status).toBe(201);
    expect(res.headers.get("set-cookie")?.split("; ")).toContain("Secure");
  });

  it("refuses a wrong key, a tenant's key and an empty form without creating a session", async () => {
    const n = node();
    const before = (await n.node.adapters.sessionsKv.keys()).length;
    const mistyped = await signIn(n, `${n.adminKey.slice(0, -3)}abc`);
    expect(mistyped.status).toBe(401);
    expect((await problem(mistyped)).type).toBe("/problems/invalid-api-key");
    expect(mistyped.headers.get("set-cookie")).toBeNull();
    const tenantKey = await signIn(n, n.apiKey);
    expect(tenantKey.status).toBe(403);
    expect((await problem(tenantKey)).type).toBe("/problems/wrong-key-type");
    const empty = await signIn(n, "  ");
    expect(empty.status).toBe(400);
    expect((await problem(empty)).detail).toMatch(/adminKey: paste an admin key/);
    expect((await n.node.adapters.sessionsKv.keys()).length).toBe(before);
  });

  it("needs the CSRF token on every write, and audits console writes under the admin key", async () => {
    const n = node();
    const s = await signedIn(n);
    const missing = await call(n, s, "POST", "/tenants", { name: "no token" });
    expect(missing.status).toBe(403);
    const p = await problem(missing);
    expect(p.type).toBe("/problems/csrf-failed");
    expect(p.detail).toMatch(/x-csrf-token/);
    const wrong = await call(
      n,
      s,
      "POST",
      "/tenants",
      { name: "wrong token" },
      `${s.view.csrfToken.slice(1)}x`,
    );
    expect((await problem(wrong)).type).toBe("/problems/csrf-failed");
    // Another session's token is no good either.
    const other = await signedIn(n);
    const crossed = await call(n, s, "POST", "/tenants", { name: "crossed" }, other.view.csrfToken);
    expect(crossed.status).toBe(403);
    for (const [method, path] of [
      ["PATCH", `/tenants/${n.tenant}`],
      ["DELETE", `/tenants/${n.tenant}`],
      ["PUT", "/flags/avif-auto"],
    ] as const) {
      const res = await call(n, s, method, path, method === "DELETE" ? undefined : { default: true });
      expect(res.status, method).toBe(403);
    }

    const made = await call(n, s, "POST", "/tenants", { name: "console made" }, s.view.csrfToken);
    expect(made.status).toBe(201);
    const tenant = (await made.json()) as { id: string };
    const audit = await n.admin("GET", `/audit?tenant=${tenant.id}&action=tenant.create`);
    const entries = ((await audit.json()) as { items: { actor: string; action: string }[] }).items;
    expect(entries).toEqual([expect.objectContaining({ actor: s.view.keyId, action: "tenant.create" })]);
    const names = (
      (await (await n.admin("GET", "/tenants?limit=1000")).json()) as { items: { name: string }[] }
    ).items;
    expect(names.map((t) => t.name)).not.toEqual(expect.arrayContaining(["no token"]));
    expect(
      names.map((t) => t.name).filter((x) => ["no token", "wrong token", "crossed"].includes(x)),
    ).toEqual([]);
  });

  it("rejects a forged cross-site form post before reading its body", async () => {
    const n = node();
    const s = await signedIn(n);
    // What a page on another site could make a browser send (were SameSite not there): a simple form post.
    const forged = await fetch(`${n.url}/admin/v1/tenants`, {
      method: "POST",
      headers: { cookie: s.cookie, "content-type": "text/plain", origin: "http://evil.example" },
      body: '{"name":"forged","x":"=1"}',
    });
    expect(forged.status).toBe(403);
    expect((await problem(forged)).type).toBe("/problems/csrf-failed");
    const list = (await (await n.admin("GET", "/tenants?search=forged")).json()) as { items: unknown[] };
    expect(list.items).toEqual([]);
  });

  it("keeps the bearer key working for scripts, whatever cookie comes along", async () => {
    const n = node();
    const res = await fetch(`${n.url}/admin/v1/tenants`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${n.adminKey}`,
        cookie: "imgfleet_session=not-a-session",
        "content-type": "application/json",
      },
      body: JSON.stringify({ name: "scripted" }),
    });
    expect(res.status).toBe(201);
    const none = await fetch(`${n.url}/admin/v1/tenants`);
    expect((await problem(none)).type).toBe("/problems/unauthenticated");
    const noSession = await fetch(`${n.url}/admin/v1/session`);
    expect(noSession.status).toBe(401);
    expect((await problem(noSession)).type).toBe("/problems/unauthenticated");
  });

  it("signs out: the session ends everywhere and the cookie is cleared", async () => {
    const n = node();
    const s = await signedIn(n);
    const forged = await call(n, s, "DELETE", "/session");
    expect(forged.status).toBe(403);
    const out = await call(n, s, "DELETE", "/session", undefined, s.view.csrfToken);
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toMatch(
      /^imgfleet_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0/,
    );
    const after = await call(n, s, "GET", "/tenants");
    expect(after.status).toBe(401);
    const p = await problem(after);
    expect(p).toMatchObject({ type: "/problems/session-expired", reason: "signed-out" });
    expect(after.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    const audit = await n.admin("GET", `/audit?action=session&actor=${s.view.keyId}`);
    const actions = ((await audit.json()) as { items: { action: string }[] }).items.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["session.create", "session.delete"]));
  });

  it("ends a session at its absolute lifetime and after its idle timeout", async () => {
    const n = node();
    const old = await signedIn(n);
    await age(n, old, { createdAt: Date.now() - 12 * 3_600_000 - 1000 });
    const res = await call(n, old, "GET", "/tenants");
    expect(res.status).toBe(401);
    expect(await problem(res)).toMatchObject({ type: "/problems/session-expired", reason: "lifetime" });
    // Ended sessions leave the bucket at once.
    expect(await n.node.adapters.sessionsKv.get(storageKey(old.cookie.split("=")[1] ?? ""))).toBeNull();

    const idle = await signedIn(n);
    await age(n, idle, { lastSeenAt: Date.now() - 30 * 60_000 - 1000 });
    expect(await problem(await call(n, idle, "GET", "/nodes"))).toMatchObject({ reason: "idle" });
  });

  it("does not count the console's automatic refreshes as activity", async () => {
    const n = node();
    const s = await signedIn(n);
    const key = storageKey(s.cookie.split("=")[1] ?? "");
    const lastSeen = async () =>
      (JSON.parse((await n.node.adapters.sessionsKv.get(key)) ?? "{}") as { lastSeenAt: number }).lastSeenAt;
    const earlier = Date.now() - 5 * 60_000;
    await age(n, s, { lastSeenAt: earlier });
    const poll = await fetch(`${n.url}/admin/v1/metrics`, {
      headers: { cookie: s.cookie, "x-console-poll": "1" },
    });
    expect(poll.status).toBe(200);
    expect(await lastSeen()).toBe(earlier);
    expect((await call(n, s, "GET", "/metrics")).status).toBe(200);
    expect(await lastSeen()).toBeGreaterThan(earlier);
  });

  it("ends the sessions of an admin key when the key is revoked", async () => {
    const n = node();
    const made = await n.admin("POST", "/admin-keys", { name: "colleague" });
    const colleague = (await made.json()) as { id: string; secret: string };
    const s = await signedIn(n, colleague.secret);
    expect((await call(n, s, "GET", "/tenants")).status).toBe(200);
    expect((await n.admin("POST", `/admin-keys/${colleague.id}/revoke`)).status).toBe(200);
    const res = await call(n, s, "GET", "/tenants");
    expect(res.status).toBe(401);
    expect(await problem(res)).toMatchObject({ type: "/problems/session-expired", reason: "key-revoked" });
  });

  it("shows the effective config with secrets redacted, and the versions, at GET /admin/v1/config", async () => {
    const n = node();
    const res = await n.admin("GET", "/config");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(CLUSTER_SECRET);
    expect(text).not.toContain("secretpath");
    const body = JSON.parse(text) as {
      node: { id: string; fleet: boolean };
      versions: { imgfleet: string; node: string; libvips: string; database: { kind: string } };
      config: { fleet: { clusterSecret: string }; ops: { webhooks: { url: string }[] }; console: unknown };
    };
    expect(body.config.fleet.clusterSecret).toBe("[redacted]");
    expect(body.config.ops.webhooks[0]?.url).toBe("https://hooks.example.com");
    expect(body.config.console).toEqual({
      idleTimeoutMs: 1_800_000,
      sessionLifetimeMs: 43_200_000,
      signInsPerMinute: 1000,
    });
    expect(body.versions).toMatchObject({ node: process.version, database: { kind: "pglite" } });
    expect(body.versions.libvips).toMatch(/^\d+\.\d+/);
    expect(body.node).toMatchObject({ id: n.node.adapters.nodeId, fleet: false });
  });
});

describe("console session limits", () => {
  it("ends a session after the configured idle timeout", async () => {
    const n = await startNode({ console: { idleTimeoutMs: 1000, sessionLifetimeMs: 60_000 } });
    const s = await signedIn(n);
    expect((await call(n, s, "GET", "/tenants")).status).toBe(200);
    const lastUse = Date.now();
    // Waiting out the idle timeout is the behaviour under test: no request may touch the session meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() - lastUse) + 100));
    const res = await call(n, s, "GET", "/tenants");
    expect(await problem(res)).toMatchObject({ type: "/problems/session-expired", reason: "idle" });
  });

  it("limits failed sign-ins and Bearer guesses per address with backoff, and never refuses a valid admin key", async () => {
    const n = await startNode({ console: { signInsPerMinute: 3 } });
    for (let i = 0; i < 3; i++) expect((await signIn(n, "imf_guess_nothing")).status).toBe(401);
    const limited = await signIn(n, "imf_guess_nothing");
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
    expect(await problem(limited)).toMatchObject({
      type: "/problems/sign-in-rate-limited",
      limitedBy: "address",
      detail: expect.stringMatching(/a valid admin key is still accepted/),
    });
    expect(limited.headers.get("set-cookie")).toBeNull();
    // Every client behind one proxy shares the address: the admin signs in all the same, at once.
    expect((await signIn(n)).status).toBe(201);

    // Bearer guesses on /admin/v1 are limited too (the same address), and the valid key still works.
    const wrong = `Bearer ${wrongSecretOf(n.adminKey)}`;
    const guess = await fetch(`${n.url}/admin/v1/tenants`, { headers: { authorization: wrong } });
    expect(guess.status).toBe(429);
    expect(await problem(guess)).toMatchObject({ type: "/problems/auth-rate-limited" });
    expect(Number(guess.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await n.admin("GET", "/tenants")).status).toBe(200);
    expect(await n.metric("imgfleet_auth_throttled_total", { surface: "sign-in", by: "address" })).toBe(1);
    expect(await n.metric("imgfleet_auth_throttled_total", { surface: "admin" })).toBeGreaterThanOrEqual(1);
  });
});
