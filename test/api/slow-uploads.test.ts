import { once } from "node:events";
import { connect } from "node:net";
import { describe, expect, it, vi } from "vitest";
import type { RawConfig } from "../../src/config/sources.js";
import { UPFRONT_PARTS } from "../../src/staging/staging-table.js";
import { CI_POLL } from "../helpers/ci.js";
import { solidImage } from "../helpers/images.js";
import { type RunningNode, startNode } from "../helpers/node.js";
import { type RawAnswer, type RawUpload, rawUpload } from "../helpers/raw-upload.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A small node: 8 MiB of staging, a quarter (2 MiB) per tenant, 1 MiB
 * uploads, and a rate floor of 1 KiB/s measured over 0.5 s after 0.5 s of
 * grace, so a trickling client is cut off within about a second (the tests
 * wait up to 15 s: CUT_OFF_MS).
 */
const SMALL_NODE = {
  limits: { maxInputBytes: MiB },
  staging: { maxBytes: 8 * MiB, tenantShare: 0.25 },
  uploads: { minBytesPerSecond: KiB, graceMs: 500, windowMs: 500, timeoutMs: 30_000 },
} satisfies RawConfig;
/** The same node without the rate floor, for tests that hold uploads open. */
const NO_FLOOR: RawConfig = { ...SMALL_NODE, uploads: { minBytesPerSecond: 0 } };
const SHARE = 2 * MiB;
/** A trickler is cut off about a second after it starts; a node without a floor keeps it 45 s or more. */
const CUT_OFF_MS = 15_000;

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function tenantKey(running: RunningNode, name: string): Promise<string> {
  const tenant = (await (await running.admin("POST", "/tenants", { name })).json()) as { id: string };
  const issued = await running.admin("POST", `/tenants/${tenant.id}/keys`, { name, scopes: ["resize"] });
  return ((await issued.json()) as { secret: string }).secret;
}

function problemOf(answer: RawAnswer): Record<string, unknown> {
  return JSON.parse(answer.body) as Record<string, unknown>;
}

describe("slow uploads", () => {
  it("cuts a trickling upload off with 408 once it is below the rate floor, and closes its connection", async () => {
    const running = await startNode(SMALL_NODE);
    const upload = rawUpload(running.url, running.apiKey, 512 * KiB);
    upload.trickle(200); // 5 bytes/s, under the 1 KiB/s floor

    const answer = await within(upload.closed, CUT_OFF_MS);
    expect(answer.status).toBe(408);
    expect(answer.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(answer.headers.connection).toBe("close");
    expect(problemOf(answer)).toMatchObject({ type: "/problems/upload-too-slow", limit: "rate" });
    expect(await running.metric("imgfleet_upload_refusals_total", { limit: "rate" })).toBe(1);
    await vi.waitFor(() => expect(running.node.adapters.staging.bytes).toBe(0), CI_POLL);
  });

  it("cuts off a trickling multipart upload the same way", async () => {
    const running = await startNode(SMALL_NODE);
    const upload = rawUpload(running.url, running.apiKey, 512 * KiB, { multipart: true });
    upload.trickle(200);

    const answer = await within(upload.closed, CUT_OFF_MS);
    expect(answer.status).toBe(408);
    expect(answer.headers.connection).toBe("close");
    expect(problemOf(answer)).toMatchObject({ type: "/problems/upload-too-slow", limit: "rate" });
    await vi.waitFor(() => expect(running.node.adapters.staging.bytes).toBe(0), CI_POLL);
  });

  it("cuts off a multipart upload that trickles before its image part even starts", async () => {
    const running = await startNode(SMALL_NODE);
    const upload = rawUpload(running.url, running.apiKey, 512 * KiB, { multipart: true, partHeader: false });
    upload.trickle(200);

    const answer = await within(upload.closed, CUT_OFF_MS);
    expect(answer.status).toBe(408);
    expect(problemOf(answer)).toMatchObject({ type: "/problems/upload-too-slow", limit: "rate" });
  });

  it("cuts off an upload that keeps pace but is not done by its deadline", async () => {
    const running = await startNode({ ...SMALL_NODE, uploads: { ...SMALL_NODE.uploads, timeoutMs: 1000 } });
    const upload = rawUpload(running.url, running.apiKey, 512 * KiB);
    const pace = setInterval(() => upload.send(2 * KiB), 100); // 20 KiB/s, over the floor
    const answer = await within(upload.closed, CUT_OFF_MS).finally(() => clearInterval(pace));
    expect(answer.status).toBe(408);
    expect(problemOf(answer)).toMatchObject({ type: "/problems/upload-too-slow", limit: "deadline" });
    expect(await running.metric("imgfleet_upload_refusals_total", { limit: "deadline" })).toBe(1);
  });

  it("answers 408 and closes a connection whose headers do not arrive in time", async () => {
    const running = await startNode({ ...SMALL_NODE, server: { headersTimeoutMs: 1000 } });
    const { hostname, port } = new URL(running.url);
    const socket = connect(Number(port), hostname);
    socket.on("error", () => {});
    let received = "";
    socket.on("data", (data) => {
      received += data.toString();
    });
    socket.write("POST /v1/resize HTTP/1.1\r\nHost: x\r\n");
    await within(once(socket, "close"), CUT_OFF_MS);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(received).toMatch(/content-type: application\/problem\+json/i);
    expect(received).toContain('"type":"/problems/request-timeout"');
    expect(await running.metric("imgfleet_upload_refusals_total", { limit: "headers" })).toBe(1);
  });

  it("grows an upload's staging reservation with the bytes that arrived past its upfront part, not the length it declared", async () => {
    const running = await startNode(NO_FLOOR);
    const staging = running.node.adapters.staging;
    const upfront = (8 * MiB) / UPFRONT_PARTS;
    const upload = rawUpload(running.url, running.apiKey, MiB);
    upload.send(100_000);
    // Before its body, an upload holds a 64th of the area, not the 1 MiB it declared.
    await vi.waitFor(() => expect(staging.bytes).toBe(upfront), CI_POLL);
    upload.send(100_000);
    await vi.waitFor(() => expect(staging.bytes).toBe(200_000), CI_POLL);
    upload.send(300_000);
    await vi.waitFor(() => expect(staging.bytes).toBe(500_000), CI_POLL);
    upload.destroy();
    await vi.waitFor(() => expect(staging.bytes).toBe(0), CI_POLL);
  });

  it("holds one tenant to its share of staging while another tenant is served", async () => {
    const running = await startNode(NO_FLOOR);
    const staging = running.node.adapters.staging;
    const hog = running.apiKey;
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, staging.bytesOf(running.tenant));
    }, 2);
    const open: RawUpload[] = [];
    try {
      // Three uploads of the hog's hold 1.5 MiB (each declared 1 MiB, which fits beside what is held).
      for (const n of [1, 2, 3]) {
        const upload = rawUpload(running.url, hog, MiB);
        open.push(upload);
        upload.send(500 * KiB);
        await vi.waitFor(() => expect(staging.bytes).toBeGreaterThanOrEqual(n * 500 * KiB), CI_POLL);
      }
      // Five more declared 1 MiB each (on a node reserving declared sizes, 8 MiB: the whole area),
      // and one without a declared length that sends 600 KiB, past the share.
      const declared = [1, 2, 3, 4, 5].map(() => rawUpload(running.url, hog, MiB));
      const chunked = rawUpload(running.url, hog, null);
      open.push(...declared, chunked);
      chunked.send(600 * KiB);

      const other = await tenantKey(running, "other tenant");
      const served = await running.post("/v1/resize?w=32", await solidImage(300, 200), {
        authorization: `Bearer ${other}`,
      });
      expect(served.status).toBe(200);

      for (const answer of await Promise.all([...declared, chunked].map((u) => u.closed))) {
        expect(answer.status).toBe(429);
        expect(Number(answer.headers["retry-after"])).toBeGreaterThanOrEqual(1);
        expect(problemOf(answer)).toMatchObject({
          type: "/problems/staging-share-exceeded",
          shareBytes: SHARE,
        });
      }
      await vi.waitFor(() => expect(staging.bytesOf(running.tenant)).toBe(1500 * KiB), CI_POLL);
      expect(peak).toBeLessThanOrEqual(SHARE);
      expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
      expect(await running.metric("imgfleet_upload_refusals_total", { limit: "tenant-share" })).toBe(6);
    } finally {
      clearInterval(sampler);
      for (const upload of open) upload.destroy();
    }
    await vi.waitFor(() => expect(staging.bytes).toBe(0), CI_POLL);
  });

  it("stays ready and serves a third tenant while two tenants trickle uploads and reconnect", async () => {
    const running = await startNode(SMALL_NODE);
    const attackers = [await tenantKey(running, "trickler one"), await tenantKey(running, "trickler two")];
    let attacking = true;
    const answers: RawAnswer[] = [];
    // Eight connections per attacker, each declaring 1 MiB (16 MiB in all, twice the area), reconnecting when cut off.
    const connection = async (key: string): Promise<void> => {
      // Each connection's last upload is left to be cut off too: every one ends in an answer.
      while (attacking) {
        const upload = rawUpload(running.url, key, MiB);
        upload.trickle(200);
        answers.push(await within(upload.closed, CUT_OFF_MS));
      }
    };
    const attack = attackers.flatMap((key) => Array.from({ length: 8 }, () => connection(key)));

    const readiness: number[] = [];
    const image = await solidImage(300, 200);
    const served: number[] = [];
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      readiness.push((await fetch(`${running.url}/readyz`)).status);
      served.push((await running.post("/v1/resize?w=32", image)).status);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    attacking = false;
    await Promise.all(attack);

    expect(readiness.filter((status) => status !== 200)).toEqual([]);
    expect(served.filter((status) => status !== 200)).toEqual([]);
    expect(answers.length).toBeGreaterThanOrEqual(16);
    for (const answer of answers) {
      expect(answer.status).toBe(408);
      expect(problemOf(answer)).toMatchObject({ type: "/problems/upload-too-slow" });
    }
    await vi.waitFor(() => expect(running.node.adapters.staging.bytes).toBe(0), CI_POLL);
  });
});

describe("admin body limit", () => {
  it("refuses an admin JSON body over 64 KiB with the admin API's limit, not the image upload's", async () => {
    const running = await startNode();
    const res = await running.admin("POST", "/tenants", { name: "x".repeat(70 * KiB) });
    expect(res.status).toBe(413);
    const problem = (await res.json()) as { type: string; detail: string; maxBytes: number };
    expect(problem).toMatchObject({ type: "/problems/too-large", maxBytes: 64 * KiB });
    expect(problem.detail).toMatch(/admin API/);
    expect(problem.detail).not.toMatch(/upload/);
  });
});
