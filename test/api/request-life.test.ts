import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import pino from "pino";
import { beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import type { RawConfig } from "../../src/config/sources.js";
import type { MeterRecord } from "../../src/usage/model.js";
import { noiseImage, solidImage } from "../helpers/images.js";
import { type RunningNode, startNode } from "../helpers/node.js";
import { type RawUpload, rawUpload } from "../helpers/raw-http.js";

/**
 * Every way a request can end, against every resource it holds: the
 * tenant's in-flight slot, the staging reservation, the in-flight gauge,
 * its one request-log line and its one usage record. Raw sockets decide
 * exactly when a client leaves.
 */

interface LogLine {
  reqId?: string;
  status?: number;
  end?: string;
  ms?: number;
  msg?: string;
}

/** A node whose log lines and usage records the test can read. */
interface Observed {
  n: RunningNode;
  lines: LogLine[];
  records: MeterRecord[];
}

const POLL = { timeout: 30_000, interval: 50 };
/** ~1.4 s of work in the worker on an idle machine (a 4000 px blur): long enough to leave, time out or drain while it runs. */
const SLOW = "w=4000&enlarge=true&blur=30";

async function observedNode(
  overrides: RawConfig = {},
  stopAfter: "test" | "manual" = "test",
): Promise<Observed> {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split("\n")) if (text) lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  const logger = pino({ level: "info" }, sink);
  const n = await startNode(
    { usage: { flushIntervalMs: 50, confirmIntervalMs: 20 }, ...overrides },
    { stopAfter, logger },
  );
  const records: MeterRecord[] = [];
  const meter = n.node.usage.meter;
  if (!meter) throw new Error("the test node meters usage");
  // Observes what is journaled; the real meter still journals it.
  const record = meter.record.bind(meter);
  vi.spyOn(meter, "record").mockImplementation((r: MeterRecord) => {
    records.push(r);
    record(r);
  });
  return { n, lines, records };
}

/** The request lines (one per request: they carry its status and duration) of one request id. */
function requestLines(o: Observed, id: string): LogLine[] {
  return o.lines.filter((l) => l.reqId === id && typeof l.status === "number" && typeof l.ms === "number");
}

async function gauge(o: Observed): Promise<number> {
  const { values } = await o.n.node.metrics.inFlight.get();
  return values[0]?.value ?? 0;
}

async function tenantWithKey(o: Observed, limits: Record<string, unknown>): Promise<string> {
  return (await issueKey(o, limits)).key;
}

async function issueKey(o: Observed, limits: Record<string, unknown> = {}) {
  const created = await o.n.admin("POST", "/tenants", {
    name: `life-${randomUUID().slice(0, 8)}`,
    ...limits,
  });
  const tenant = ((await created.json()) as { id: string }).id;
  const issued = await o.n.admin("POST", `/tenants/${tenant}/keys`, { scopes: ["resize"] });
  const { id: keyId, secret: key } = (await issued.json()) as { id: string; secret: string };
  return { tenant, keyId, key };
}

function upload(o: Observed, key: string, query: string, body: Buffer, id: string): Promise<RawUpload> {
  return rawUpload(o.n.url, `/v1/resize?${query}`, body, {
    authorization: `Bearer ${key}`,
    "content-type": "image/jpeg",
    "x-request-id": id,
  });
}

/** Every resource of the request is back, and it left exactly one log line and one usage record saying how it ended. */
async function expectEnded(
  o: Observed,
  id: string,
  key: string,
  expected: { status: number; end: string; inBytes?: number },
): Promise<void> {
  await vi.waitFor(() => expect(requestLines(o, id).length).toBeGreaterThan(0), POLL);
  await vi.waitFor(async () => expect(await gauge(o)).toBe(0), POLL);
  await vi.waitFor(() => expect(o.n.node.adapters.staging.size).toBe(0), POLL);
  expect(o.n.node.adapters.staging.bytes).toBe(0);
  const lines = requestLines(o, id);
  expect(lines, "one request-log line").toHaveLength(1);
  expect(lines[0]).toMatchObject({ status: expected.status, end: expected.end });
  const records = o.records.filter((r) => r.id === id);
  expect(records, "one usage record").toHaveLength(1);
  expect(records[0]?.status).toBe(expected.status);
  if (expected.inBytes !== undefined) expect(records[0]?.inBytes).toBe(expected.inBytes);
  if (expected.status !== 200) expect(records[0]?.outBytes).toBe(0);
  // The tenant's slots are all free: as many requests as its maxInFlight are served at once. Polled:
  // the job of a client that left may still run, or a worker restart after a job stopped at its deadline.
  const small = await solidImage(40, 30);
  const both = () =>
    Promise.all(
      [1, 2].map(
        async () => (await o.n.post("/v1/resize?w=10", small, { authorization: `Bearer ${key}` })).status,
      ),
    );
  await vi.waitFor(async () => expect(await both()).toEqual([200, 200]), POLL);
}

describe("a request's life: every resource is given back once, however the request ends", () => {
  let o: Observed;
  let small: Buffer;
  let slow: Buffer;
  beforeAll(async () => {
    o = await observedNode({}, "manual");
    small = await solidImage(60, 40);
    // A large body, to leave before or part-way through.
    slow = await noiseImage(1500);
    return () => o.n.stop();
  });

  it("answered 200", async () => {
    const key = await tenantWithKey(o, { maxInFlight: 2 });
    const id = randomUUID();
    const client = await upload(o, key, "w=20", small, id);
    await client.send();
    expect((await client.answer)?.status).toBe(200);
    await expectEnded(o, id, key, { status: 200, end: "answered", inBytes: small.length });
  });

  it("refused 4xx before its body (declared over the tenant's size limit)", async () => {
    const key = await tenantWithKey(o, { maxInFlight: 2, maxInputBytes: 2000 });
    const id = randomUUID();
    const client = await upload(o, key, "w=20", slow, id);
    expect((await client.answer)?.status).toBe(413);
    await expectEnded(o, id, key, { status: 413, end: "answered" });
  });

  it("client gone before its body", async () => {
    const key = await tenantWithKey(o, { maxInFlight: 2 });
    const id = randomUUID();
    const client = await upload(o, key, "w=20", slow, id);
    // Admitted: its declared size is reserved in staging.
    await vi.waitFor(() => expect(o.n.node.adapters.staging.size).toBeGreaterThan(0), POLL);
    client.leave();
    expect(await client.answer).toBeNull();
    await expectEnded(o, id, key, { status: 499, end: "client-closed", inBytes: 0 });
  });

  it("client gone mid-upload", async () => {
    const key = await tenantWithKey(o, { maxInFlight: 2 });
    const id = randomUUID();
    const client = await upload(o, key, "w=20", slow, id);
    await client.send(Math.floor(slow.length / 2));
    await vi.waitFor(() => expect(o.n.node.adapters.staging.size).toBeGreaterThan(0), POLL);
    client.leave();
    expect(await client.answer).toBeNull();
    await expectEnded(o, id, key, { status: 499, end: "client-closed", inBytes: 0 });
  });

  it("client gone after its upload, while its job runs", async () => {
    const key = await tenantWithKey(o, { maxInFlight: 2 });
    const id = randomUUID();
    const client = await upload(o, key, SLOW, small, id);
    await client.send();
    await vi.waitFor(() => expect(o.n.node.pool?.busyCount).toBeGreaterThan(0), POLL);
    client.leave();
    expect(await client.answer).toBeNull();
    await expectEnded(o, id, key, { status: 499, end: "client-closed", inBytes: small.length });
  });

  it("client gone after its upload, while its job waits in the queue", async () => {
    const key = await tenantWithKey(o, { maxInFlight: 2 });
    const other = await tenantWithKey(o, { maxInFlight: 8 });
    // Another tenant's slow jobs hold the worker, so this one waits in the queue.
    const ahead = [1, 2, 3].map(() =>
      o.n.post(`/v1/resize?${SLOW}`, small, { authorization: `Bearer ${other}` }).then(
        async (r) => void (await r.arrayBuffer()),
        () => {},
      ),
    );
    await vi.waitFor(() => expect(o.n.node.pool?.busyCount).toBeGreaterThan(0), POLL);
    const id = randomUUID();
    const client = await upload(o, key, "w=20", small, id);
    await client.send();
    await vi.waitFor(() => expect(o.n.node.adapters.queue.stats().depth).toBeGreaterThan(0), POLL);
    client.leave();
    expect(await client.answer).toBeNull();
    await Promise.all(ahead);
    await expectEnded(o, id, key, { status: 499, end: "client-closed", inBytes: small.length });
  });

  it("handler error: an invalid option after the body arrived", async () => {
    const key = await tenantWithKey(o, { maxInFlight: 2 });
    const id = randomUUID();
    const client = await upload(o, key, "w=-5", small, id);
    await client.send();
    expect((await client.answer)?.status).toBe(400);
    await expectEnded(o, id, key, { status: 400, end: "answered", inBytes: small.length });
  });

  it("a key revoked while its upload was arriving is refused once the body is in, not served", async () => {
    const { tenant, keyId, key } = await issueKey(o, { maxInFlight: 2 });
    const id = randomUUID();
    const client = await upload(o, key, "w=20", small, id);
    await client.send(100);
    await vi.waitFor(() => expect(o.n.node.adapters.staging.size).toBeGreaterThan(0), POLL);
    expect((await o.n.admin("POST", `/tenants/${tenant}/keys/${keyId}/revoke`)).status).toBe(200);
    // The revocation reaches the in-memory data plane through the outbox.
    await vi.waitFor(() => expect(o.n.node.identity.cache.key(keyId)?.revokedAt).not.toBeNull(), POLL);
    await client.send();
    const answer = await client.answer;
    expect(answer?.status).toBe(401);
    expect(JSON.parse(answer?.body.toString() ?? "{}")).toMatchObject({ type: "/problems/api-key-revoked" });
    await vi.waitFor(() => expect(requestLines(o, id)).toHaveLength(1), POLL);
    expect(o.records.filter((r) => r.id === id).map((r) => r.status)).toEqual([401]);
  });

  it("a tenant suspended while its upload was arriving is refused once the body is in", async () => {
    const { tenant, key } = await issueKey(o);
    const id = randomUUID();
    const client = await upload(o, key, "w=20", small, id);
    await client.send(100);
    await vi.waitFor(() => expect(o.n.node.adapters.staging.size).toBeGreaterThan(0), POLL);
    expect((await o.n.admin("POST", `/tenants/${tenant}/suspend`)).status).toBe(200);
    await vi.waitFor(() => expect(o.n.node.identity.cache.tenant(tenant)?.status).toBe("suspended"), POLL);
    await client.send();
    const answer = await client.answer;
    expect(answer?.status).toBe(403);
    expect(JSON.parse(answer?.body.toString() ?? "{}")).toMatchObject({ type: "/problems/tenant-suspended" });
  });
});

describe("a request's life on a node with a short deadline or draining", () => {
  it("server timeout: the job's deadline passes while the client waits", async () => {
    const o = await observedNode({ queue: { deadlineMs: 300 } });
    const key = await tenantWithKey(o, { maxInFlight: 2 });
    const id = randomUUID();
    const client = await upload(o, key, SLOW, await solidImage(60, 40), id);
    await client.send();
    const answer = await client.answer;
    expect(answer?.status).toBe(504);
    await expectEnded(o, id, key, { status: 504, end: "answered" });
  });

  it("drain: the node closes a request still running past its grace period", async () => {
    const o = await observedNode({ server: { shutdownGraceMs: 50 } }, "manual");
    // Stopped by the test itself; this removes its data directory, also when an assertion fails first.
    onTestFinished(() => o.n.stop().catch(() => {}));
    const key = await tenantWithKey(o, { maxInFlight: 2 });
    const id = randomUUID();
    const client = await upload(o, key, SLOW, await solidImage(60, 40), id);
    await client.send();
    await vi.waitFor(() => expect(o.n.node.pool?.busyCount).toBeGreaterThan(0), POLL);
    // The job takes ~350 ms on an idle machine (longer under load), 7x the grace.
    expect(await o.n.node.stop(), JSON.stringify(requestLines(o, id))).toBe(false);
    expect(await client.answer).toBeNull();
    await vi.waitFor(() => expect(requestLines(o, id)).toHaveLength(1), POLL);
    expect(requestLines(o, id)[0]).toMatchObject({ status: 503, end: "server-closed" });
    expect(await gauge(o)).toBe(0);
    expect(o.n.node.adapters.staging.bytes).toBe(0);
    expect(o.records.filter((r) => r.id === id).map((r) => r.status)).toEqual([503]);
  });
});
