import { setTimeout as sleep } from "node:timers/promises";
import sharp from "sharp";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { generateApiKey } from "../../src/identity/api-key.js";
import { noiseImage, solidImage } from "../helpers/images.js";
import { startNode, useNode } from "../helpers/node.js";

interface Problem {
  type: string;
  status: number;
  detail: string;
  [extra: string]: unknown;
}

interface IssuedKey {
  id: string;
  secret: string;
  expiresAt: string | null;
  replacedBy: string | null;
}

interface TenantKey {
  tenant: string;
  key: string;
  keyId: string;
}

const CHALLENGE = 'Bearer realm="imgfleet"';

async function problemOf(res: Response): Promise<Problem> {
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  return (await res.json()) as Problem;
}

/** Asserts a 401 with the Bearer challenge and the given problem type; returns the problem. */
async function expect401(res: Response, type: string): Promise<Problem> {
  expect(res.status).toBe(401);
  expect(res.headers.get("www-authenticate")).toBe(CHALLENGE);
  const problem = await problemOf(res);
  expect(problem.type).toBe(`/problems/${type}`);
  return problem;
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe("API key enforcement on /v1", () => {
  const node = useNode();
  let image: Buffer;
  let names = 0;
  beforeAll(async () => {
    image = await solidImage(60, 40);
  });

  /** A tenant with these limits and one key with these scopes, made through the admin API. */
  const tenantWithKey = async (
    limits: Record<string, unknown> = {},
    key: Record<string, unknown> = { scopes: ["resize"] },
  ): Promise<TenantKey> => {
    const created = await node().admin("POST", "/tenants", { name: `auth-${++names}`, ...limits });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const issued = await issueKey(id, key);
    return { tenant: id, key: issued.secret, keyId: issued.id };
  };
  const issueKey = async (tenant: string, body: Record<string, unknown>): Promise<IssuedKey> => {
    const res = await node().admin("POST", `/tenants/${tenant}/keys`, body);
    expect(res.status).toBe(201);
    return (await res.json()) as IssuedKey;
  };
  const resize = async (
    headers: Record<string, string>,
    query = "w=20",
    body?: Buffer,
    signal?: AbortSignal,
  ) =>
    fetch(`${node().url}/v1/resize?${query}`, {
      method: "POST",
      body: body ?? image,
      headers: { "content-type": "image/jpeg", ...headers },
      ...(signal ? { signal } : {}),
    });
  const formats = (headers: Record<string, string>) => fetch(`${node().url}/v1/formats`, { headers });
  const busyWorkers = async () => {
    const ready = (await (await fetch(`${node().url}/readyz`)).json()) as { workers: { busy: number } };
    return ready.workers.busy;
  };

  describe("authentication", () => {
    it("answers 401 unauthenticated with a Bearer challenge when no key is sent", async () => {
      const problem = await expect401(await resize({}), "unauthenticated");
      expect(problem.detail).toContain("Authorization: Bearer");
      await expect401(await formats({}), "unauthenticated");
    });

    it("answers 401 unauthenticated for an Authorization header that is not a Bearer token", async () => {
      await expect401(await resize({ authorization: `Basic ${node().apiKey}` }), "unauthenticated");
    });

    it("answers 401 invalid-api-key for a malformed key", async () => {
      const problem = await expect401(await resize(bearer("not-a-key")), "invalid-api-key");
      expect(problem.detail).toContain("malformed");
      // Cut short: the right prefix, but not the issued shape.
      await expect401(await resize(bearer(node().apiKey.slice(0, -3))), "invalid-api-key");
    });

    it("answers 401 invalid-api-key naming the checksum when one character is mistyped", async () => {
      const key = node().apiKey;
      // A character inside the secret, replaced by another valid base62 character.
      const at = key.length - 20;
      const typo = `${key.slice(0, at)}${key[at] === "a" ? "b" : "a"}${key.slice(at + 1)}`;
      expect(typo).not.toBe(key);
      const problem = await expect401(await resize(bearer(typo)), "invalid-api-key");
      expect(problem.detail).toMatch(/checksum/);
      expect(problem.detail).toMatch(/mistyped/);
    });

    it("answers 401 invalid-api-key for a well-formed key that was never issued", async () => {
      const problem = await expect401(await resize(bearer(generateApiKey().token)), "invalid-api-key");
      expect(problem.detail).not.toMatch(/checksum/);
      expect((await resize(node().auth)).status).toBe(200);
    });

    it("accepts a key until its expiresAt, then answers 401 api-key-expired", async () => {
      const { tenant } = await tenantWithKey();
      const expiresAt = new Date(Date.now() + 2000);
      const issued = await issueKey(tenant, { scopes: ["resize"], expiresAt: expiresAt.toISOString() });
      expect(issued.expiresAt).toBe(expiresAt.toISOString());
      expect((await resize(bearer(issued.secret))).status).toBe(200);
      await sleep(expiresAt.getTime() - Date.now() + 200);
      const problem = await expect401(await resize(bearer(issued.secret)), "api-key-expired");
      expect(problem.detail).toContain(expiresAt.toISOString());
    });
  });

  describe("revocation and rotation", () => {
    it("refuses a revoked key on the very next request, and reports the propagation delay", async () => {
      const { tenant, key, keyId } = await tenantWithKey();
      expect((await resize(bearer(key))).status).toBe(200);
      const revoked = await node().admin("POST", `/tenants/${tenant}/keys/${keyId}/revoke`);
      expect(revoked.status).toBe(200);
      expect(((await revoked.json()) as { revokedAt: string | null }).revokedAt).not.toBeNull();
      await expect401(await resize(bearer(key)), "api-key-revoked");
      await expect401(await formats(bearer(key)), "api-key-revoked");

      const identity = await node().admin("GET", "/identity");
      expect(identity.status).toBe(200);
      const stats = (await identity.json()) as {
        loaded: boolean;
        propagationMs: { samples: number; p50: number | null };
      };
      expect(stats.loaded).toBe(true);
      expect(stats.propagationMs.samples).toBeGreaterThan(0);
      expect(typeof stats.propagationMs.p50).toBe("number");
      expect(await node().metric("imgfleet_identity_propagation_seconds_count")).toBeGreaterThan(0);
    });

    it("keeps a rotated key working for its grace period beside its replacement", async () => {
      const { tenant, key: oldKey, keyId: oldId } = await tenantWithKey();
      const rotated = await node().admin("POST", `/tenants/${tenant}/keys/${oldId}/rotate`, {
        graceSeconds: 2,
      });
      expect(rotated.status).toBe(201);
      const fresh = (await rotated.json()) as IssuedKey & { previous: IssuedKey };
      expect(fresh.secret).toMatch(/^imf_/);
      expect(fresh.id).not.toBe(oldId);
      expect(fresh.previous.id).toBe(oldId);
      expect(fresh.previous.replacedBy).toBe(fresh.id);
      expect(fresh.previous.expiresAt).not.toBeNull();

      expect((await resize(bearer(oldKey))).status).toBe(200);
      expect((await resize(bearer(fresh.secret))).status).toBe(200);

      const again = await node().admin("POST", `/tenants/${tenant}/keys/${oldId}/rotate`, {
        graceSeconds: 2,
      });
      expect(again.status).toBe(409);
      const conflict = await problemOf(again);
      expect(conflict.type).toBe("/problems/conflict");
      expect(conflict.detail).toContain(fresh.id);

      await sleep(Date.parse(fresh.previous.expiresAt ?? "") - Date.now() + 500);
      await expect401(await resize(bearer(oldKey)), "api-key-expired");
      expect((await resize(bearer(fresh.secret))).status).toBe(200);
    });
  });

  describe("tenant status", () => {
    it("answers 403 tenant-suspended while the tenant is suspended, and serves it again once resumed", async () => {
      const { tenant, key } = await tenantWithKey();
      expect((await node().admin("POST", `/tenants/${tenant}/suspend`)).status).toBe(200);
      const res = await resize(bearer(key));
      expect(res.status).toBe(403);
      expect((await problemOf(res)).type).toBe("/problems/tenant-suspended");
      expect((await node().admin("POST", `/tenants/${tenant}/resume`)).status).toBe(200);
      expect((await resize(bearer(key))).status).toBe(200);
    });

    it("answers 401 to every key of a deleted tenant", async () => {
      const { tenant, key } = await tenantWithKey();
      const second = await issueKey(tenant, { scopes: ["resize"] });
      expect((await resize(bearer(key))).status).toBe(200);
      expect((await node().admin("DELETE", `/tenants/${tenant}`)).status).toBe(200);
      for (const k of [key, second.secret]) {
        const res = await resize(bearer(k));
        expect(res.status).toBe(401);
        expect(["/problems/api-key-revoked", "/problems/invalid-api-key"]).toContain(
          (await problemOf(res)).type,
        );
      }
    });
  });

  describe("scopes and key types", () => {
    it("answers 403 missing-scope naming the required scope", async () => {
      const { key } = await tenantWithKey({}, { scopes: ["usage:read"] });
      const res = await resize(bearer(key));
      expect(res.status).toBe(403);
      const problem = await problemOf(res);
      expect(problem).toMatchObject({ type: "/problems/missing-scope", requiredScope: "resize" });
      expect(problem.detail).toContain("usage:read");
    });

    it("refuses an admin key on /v1/resize with 403 wrong-key-type", async () => {
      const res = await resize(bearer(node().adminKey));
      expect(res.status).toBe(403);
      expect((await problemOf(res)).type).toBe("/problems/wrong-key-type");
    });

    it("refuses a tenant key on the admin API with 403 wrong-key-type, and no key with 401", async () => {
      const withTenantKey = await node().admin("GET", "/tenants", undefined, node().apiKey);
      expect(withTenantKey.status).toBe(403);
      expect((await problemOf(withTenantKey)).type).toBe("/problems/wrong-key-type");
      const withoutKey = await fetch(`${node().url}/admin/v1/tenants`);
      await expect401(withoutKey, "unauthenticated");
    });
  });

  describe("rate and in-flight limits", () => {
    it("answers 429 rate-limited with Retry-After and RateLimit fields once the burst is spent", async () => {
      const { key } = await tenantWithKey({ ratePerSecond: 1, burst: 3 });
      const before = await node().metric("imgfleet_rejections_total", { reason: "rate-limited" });
      const remaining: (string | null)[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await formats(bearer(key));
        expect(res.status).toBe(200);
        expect(res.headers.get("ratelimit-limit")).toBe("3");
        expect(res.headers.get("ratelimit-policy")).toBeTruthy();
        remaining.push(res.headers.get("ratelimit-remaining"));
      }
      expect(remaining).toEqual(["2", "1", "0"]);

      const refused = await formats(bearer(key));
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(refused.headers.get("ratelimit-limit")).toBe("3");
      expect(refused.headers.get("ratelimit-remaining")).toBe("0");
      expect(refused.headers.get("ratelimit-policy")).toBeTruthy();
      expect((await problemOf(refused)).type).toBe("/problems/rate-limited");
      expect(await node().metric("imgfleet_rejections_total", { reason: "rate-limited" })).toBe(before + 1);
    });

    it("answers 429 too-many-in-flight beyond maxInFlight, and frees the slot when the request ends", async () => {
      const { key } = await tenantWithKey({ maxInFlight: 1 });
      const slow = resize(bearer(key), "blur=60", await noiseImage(2500));
      await vi.waitFor(async () => expect(await busyWorkers()).toBe(1), { timeout: 10_000 });

      const refused = await resize(bearer(key));
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect((await problemOf(refused)).type).toBe("/problems/too-many-in-flight");
      // Another tenant is not held back by this one's limit.
      expect((await formats(node().auth)).status).toBe(200);

      const first = await slow;
      expect(first.status).toBe(200);
      await first.arrayBuffer();
      expect((await resize(bearer(key))).status).toBe(200);
    });

    it("gives back the in-flight slot of a request refused by admission or by the upload check", async () => {
      const { key } = await tenantWithKey({ maxInFlight: 1, maxInputBytes: 2000 });
      const big = await noiseImage(100);
      expect(big.length).toBeGreaterThan(2000);
      for (let i = 0; i < 3; i++) {
        const res = await resize(bearer(key), "w=20", big);
        expect(res.status).toBe(413);
        await res.arrayBuffer();
      }
      // Streamed without Content-Length: refused after reading, by the upload check.
      for (let i = 0; i < 2; i++) expect((await streamed(node().url, key, big)).status).toBe(413);
      expect((await resize(bearer(key))).status).toBe(200);
    });
    it("gives back the in-flight slot of a client that leaves after its upload, once its job ends", async () => {
      const { key } = await tenantWithKey({ maxInFlight: 2 });
      const image = await noiseImage(1500);
      // Two clients send the whole upload, then leave while their job runs (as `curl -m` does).
      for (let i = 0; i < 2; i++) {
        const leaving = new AbortController();
        const sent = resize(bearer(key), "blur=60", image, leaving.signal).catch((e: Error) => e);
        await vi.waitFor(async () => expect(await busyWorkers()).toBeGreaterThan(0), { timeout: 10_000 });
        leaving.abort();
        expect(await sent).toBeInstanceOf(Error);
      }
      // Their slots come back when the jobs end, not at a restart.
      await vi.waitFor(async () => expect(await busyWorkers()).toBe(0), { timeout: 30_000 });
      await vi.waitFor(async () => expect((await resize(bearer(key))).status).toBe(200), { timeout: 15_000 });
    });
  });

  describe("tenant limits on resize options", () => {
    it("refuses an upload over the tenant's maxInputBytes with 413 naming that limit, declared or streamed", async () => {
      const { key } = await tenantWithKey({ maxInputBytes: 2000 });
      const image = await noiseImage(100);
      expect(image.length).toBeGreaterThan(4000);
      const declared = await resize(bearer(key), "w=20", image);
      expect(declared.status).toBe(413);
      expect(await problemOf(declared)).toMatchObject({ type: "/problems/too-large", maxBytes: 2000 });
      const chunked = await streamed(node().url, key, image);
      expect(chunked.status).toBe(413);
      expect(await problemOf(chunked)).toMatchObject({ type: "/problems/too-large", maxBytes: 2000 });
      // Under the tenant's limit is fine.
      expect((await resize(bearer(key), "w=20", await solidImage(20, 20))).status).toBe(200);
    });

    it("shows the tenant's own limits and output formats in /v1/formats", async () => {
      const { key } = await tenantWithKey({ maxInputBytes: 2000, outputFormats: ["webp"] });
      const res = await formats(bearer(key));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { output: string[]; limits: { maxInputBytes: number } };
      expect(body.limits.maxInputBytes).toBe(2000);
      expect(body.output).toEqual(["webp", "auto"]);
      // Another tenant still sees the node's limits.
      const other = (await (await formats(node().auth)).json()) as typeof body;
      expect(other.limits.maxInputBytes).toBe(node().node.config.limits.maxInputBytes);
      expect(other.output).toEqual(expect.arrayContaining(["jpeg", "png", "webp", "auto"]));
    });

    it("answers 403 format-not-allowed for a format the tenant does not have, and negotiates within its list", async () => {
      const { key } = await tenantWithKey({ outputFormats: ["webp"] });
      const png = await resize(bearer(key), "w=20&format=png");
      expect(png.status).toBe(403);
      expect(await problemOf(png)).toMatchObject({ type: "/problems/format-not-allowed", allowed: ["webp"] });

      const auto = await resize({ ...bearer(key), accept: "image/avif,image/webp" }, "w=20&format=auto");
      expect(auto.status).toBe(200);
      expect(auto.headers.get("content-type")).toBe("image/webp");
      expect((await sharp(Buffer.from(await auto.arrayBuffer())).metadata()).format).toBe("webp");

      const unspecified = await resize(bearer(key), "w=20");
      expect(unspecified.status).toBe(200);
      expect(unspecified.headers.get("content-type")).toBe("image/webp");
      expect((await sharp(Buffer.from(await unspecified.arrayBuffer())).metadata()).format).toBe("webp");
    });
  });
});

describe("auth.mode none", () => {
  it("serves /v1 without a key but still guards the admin API", async () => {
    const { url, adminKey } = await startNode({ auth: { mode: "none" } });
    const res = await fetch(`${url}/v1/resize?w=20`, {
      method: "POST",
      body: await solidImage(60, 40),
      headers: { "content-type": "image/jpeg" },
    });
    expect(res.status).toBe(200);
    expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width).toBe(20);
    expect((await fetch(`${url}/v1/formats`)).status).toBe(200);

    const admin = await fetch(`${url}/admin/v1/tenants`);
    await expect401(admin, "unauthenticated");
    const withKey = await fetch(`${url}/admin/v1/tenants`, { headers: bearer(adminKey) });
    expect(withKey.status).toBe(200);
  });
});

/** POSTs the image as a chunked stream, so the server does not know its length up front. */
function streamed(url: string, key: string, body: Buffer): Promise<Response> {
  const stream = new ReadableStream({
    start(controller) {
      controller.enqueue(body);
      controller.close();
    },
  });
  return fetch(`${url}/v1/resize?w=20`, {
    method: "POST",
    body: stream,
    headers: { "content-type": "image/jpeg", ...bearer(key) },
    duplex: "half",
  } as RequestInit);
}
