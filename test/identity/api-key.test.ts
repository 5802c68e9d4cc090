import { createHash } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { generateApiKey, hashSecret, parseApiKey, secretMatches } from "../../src/identity/api-key.js";
import { isId, newId, sortableId } from "../../src/identity/ids.js";

const timingSafeEqual = vi.hoisted(() => ({ calls: 0 }));
vi.mock("node:crypto", async (importOriginal) => {
  const crypto = await importOriginal<typeof import("node:crypto")>();
  return {
    ...crypto,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      timingSafeEqual.calls++;
      return crypto.timingSafeEqual(a, b);
    },
  };
});

describe("API key format", () => {
  it("is imf_<key id>_<43 base62 secret characters><6 checksum characters>", () => {
    const { token, id } = generateApiKey();
    expect(token).toMatch(/^imf_[0-9a-z]{26}_[0-9A-Za-z]{49}$/);
    expect(id).toBe(`key_${token.split("_")[1]}`);
  });

  it("parses back to its id and secret", () => {
    const made = generateApiKey();
    const parsed = parseApiKey(made.token);
    expect(parsed).toMatchObject({ ok: true, id: made.id });
    if (parsed.ok) expect(hashSecret(parsed.secret)).toBe(made.secretSha256);
  });

  it("catches every single-character typo with its checksum, before any lookup", () => {
    const { token } = generateApiKey();
    const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let caught = 0;
    let tried = 0;
    for (let i = 4; i < token.length; i++) {
      if (token[i] === "_") continue;
      const replacement = alphabet[(alphabet.indexOf(token[i] as string) + 7) % 62] as string;
      const typo = token.slice(0, i) + replacement + token.slice(i + 1);
      tried++;
      const parsed = parseApiKey(typo);
      if (!parsed.ok) caught++;
    }
    expect(caught).toBe(tried);
  });

  it("says why a key is refused: its shape or its checksum", () => {
    const { token } = generateApiKey();
    expect(parseApiKey(token.slice(0, -1))).toEqual({ ok: false, reason: "shape" });
    expect(parseApiKey(`xyz${token.slice(3)}`)).toEqual({ ok: false, reason: "shape" });
    expect(parseApiKey("")).toEqual({ ok: false, reason: "shape" });
    const last = token.at(-1) === "A" ? "B" : "A";
    expect(parseApiKey(token.slice(0, -1) + last)).toEqual({ ok: false, reason: "checksum" });
  });

  it("makes a different secret every time from 32 random bytes", () => {
    const secrets = new Set(Array.from({ length: 200 }, () => generateApiKey().token.split("_")[2]));
    expect(secrets.size).toBe(200);
  });
});

describe("secret hashing", () => {
  it("stores only the SHA-256 of the secret", () => {
    const made = generateApiKey();
    const parsed = parseApiKey(made.token);
    if (!parsed.ok) throw new Error("expected a valid key");
    expect(made.secretSha256).toBe(createHash("sha256").update(parsed.secret).digest("hex"));
    expect(made.secretSha256).not.toContain(parsed.secret);
  });

  it("matches the right secret and no other, comparing in constant time", () => {
    const made = generateApiKey();
    const parsed = parseApiKey(made.token);
    if (!parsed.ok) throw new Error("expected a valid key");
    timingSafeEqual.calls = 0;
    expect(secretMatches(parsed.secret, made.secretSha256)).toBe(true);
    const other = parsed.secret.endsWith("x") ? "y" : "x";
    expect(secretMatches(`${parsed.secret.slice(0, -1)}${other}`, made.secretSha256)).toBe(false);
    expect(timingSafeEqual.calls).toBe(2);
    expect(secretMatches(parsed.secret, "abcd")).toBe(false);
  });
});

describe("ids", () => {
  it("are opaque, prefixed and sort by creation time", () => {
    const earlier = sortableId(Date.parse("2026-01-01T00:00:00Z"));
    const later = sortableId(Date.parse("2026-01-01T00:00:01Z"));
    expect(earlier < later).toBe(true);
    const id = newId("ten");
    expect(isId("ten", id)).toBe(true);
    expect(isId("key", id)).toBe(false);
  });

  it("are not sequential: ids made in the same millisecond differ in their random part", () => {
    const now = Date.now();
    const ids = Array.from({ length: 100 }, () => sortableId(now));
    expect(new Set(ids).size).toBe(100);
    expect(new Set(ids.map((i) => i.slice(0, 10))).size).toBe(1);
  });
});

describe("ids of one millisecond", () => {
  it("sort in the order they were made, so a page by id lists records in creation order", () => {
    const now = Date.now();
    const ids = Array.from({ length: 1000 }, () => sortableId(now));
    expect([...ids].sort()).toEqual(ids);
  });
});
