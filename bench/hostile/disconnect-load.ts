/**
 * The load of issue 13's "10,000 requests of which 30% disconnect at random
 * moments (before, during and after the upload)", as a function both
 * bench/hostile/disconnects.ts (at 10,000) and test/api/disconnects.test.ts
 * (at a CI-sized count) run against a node. Each request is a raw TCP
 * connection, so the moment a client leaves is exact; what every client
 * fully received is counted, to be compared with the node's usage.
 */
import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { ImgfleetNode } from "../../src/app/node.js";

/** When a client leaves: never, right after its headers, part-way through its body, or while its job runs. */
export type Leave = "none" | "before" | "during" | "after";

export interface LoadTenant {
  id: string;
  key: string;
}

export interface DisconnectLoad {
  url: string;
  tenants: readonly LoadTenant[];
  /** Small images to upload, picked at random. */
  images: readonly Buffer[];
  requests: number;
  concurrency: number;
  /** Share of requests whose client leaves (0.3), split evenly between before, during and after. */
  leaveShare: number;
  seed: number;
}

/** What one client saw. */
export interface ClientResult {
  /** The request's X-Request-Id, to find it in the node's log and usage records. */
  id: string;
  tenant: string;
  leave: Leave;
  /** The status of a whole answer received; null when the client left (or the node closed) without one. */
  status: number | null;
  /** Body bytes of a whole 200 received. */
  bytes: number;
}

/** A quick resize, for clients that stay or leave during the upload. */
export const FAST_QUERY = "w=32&format=webp";
/**
 * At least ~75 ms of worker time for a 64 px image on this project's idle
 * test machine (150 KB of JPEG out), for clients that leave after their
 * upload: they leave within AFTER_WINDOW_MS of sending its last byte, when
 * their answer cannot have been written yet. A client whose timer fires
 * later than AFTER_WINDOW_MS + LATE_MS (an event loop busy elsewhere) stays
 * and reads its answer instead, so "left" never races the answer.
 */
export const SLOW_QUERY = "w=1600&enlarge=true&blur=4&format=jpeg";
export const AFTER_WINDOW_MS = 10;
const LATE_MS = 15;

/** Runs the load; resolves with what each client saw, in the order they were planned. */
export async function runDisconnectLoad(load: DisconnectLoad): Promise<ClientResult[]> {
  const random = mulberry32(load.seed);
  const results: ClientResult[] = new Array(load.requests);
  let next = 0;
  const lane = async () => {
    while (next < load.requests) {
      const index = next++;
      results[index] = await oneClient(load, plan(load, random));
    }
  };
  await Promise.all(Array.from({ length: load.concurrency }, lane));
  return results;
}

interface Planned {
  tenant: LoadTenant;
  image: Buffer;
  leave: Leave;
  /** 0..1: when, within its phase, the client leaves. */
  moment: number;
}

function plan(load: DisconnectLoad, random: () => number): Planned {
  const tenant = load.tenants[Math.floor(random() * load.tenants.length)] as LoadTenant;
  const image = load.images[Math.floor(random() * load.images.length)] as Buffer;
  const roll = random();
  const third = load.leaveShare / 3;
  const leave: Leave =
    roll >= load.leaveShare ? "none" : roll < third ? "before" : roll < 2 * third ? "during" : "after";
  return { tenant, image, leave, moment: random() };
}

async function oneClient(load: DisconnectLoad, p: Planned): Promise<ClientResult> {
  const query = p.leave === "after" ? SLOW_QUERY : FAST_QUERY;
  const id = randomUUID();
  const conn = await openUpload(load.url, `/v1/resize?${query}`, p.image, p.tenant.key, id);
  const result = (status: number | null, bytes = 0): ClientResult => ({
    id,
    tenant: p.tenant.id,
    leave: p.leave,
    status,
    bytes,
  });
  if (p.leave === "before") {
    await sleep(p.moment * 3);
  } else if (p.leave === "during") {
    await conn.send(Math.max(1, Math.floor(p.moment * (p.image.length - 1))));
  } else {
    await conn.send(p.image.length);
  }
  if (p.leave === "after") {
    const uploaded = performance.now();
    await sleep(p.moment * AFTER_WINDOW_MS);
    if (performance.now() - uploaded <= AFTER_WINDOW_MS + LATE_MS && conn.received() === 0) conn.leave();
  } else if (p.leave !== "none" && conn.received() === 0) {
    // A client already answered (refused before its body) reads its answer rather than leave.
    conn.leave();
  }
  const answer = await conn.answer;
  if (!answer) return result(null);
  return result(answer.status, answer.status === 200 ? answer.body.length : 0);
}

interface Answer {
  status: number;
  body: Buffer;
}

interface Upload {
  send(bytes: number): Promise<void>;
  received(): number;
  leave(): void;
  /** The whole answer once the connection closed, or null. */
  answer: Promise<Answer | null>;
}

async function openUpload(url: string, path: string, body: Buffer, key: string, id: string): Promise<Upload> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  socket.on("error", () => {});
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  const answer = new Promise<Answer | null>((resolve) => {
    socket.once("close", () => resolve(parseAnswer(Buffer.concat(chunks))));
  });
  await new Promise<void>((resolve) => {
    socket.once("connect", resolve);
    socket.once("close", resolve);
  });
  socket.write(
    `POST ${path} HTTP/1.1\r\nhost: ${hostname}:${port}\r\nauthorization: Bearer ${key}\r\n` +
      `content-type: image/jpeg\r\ncontent-length: ${body.length}\r\nx-request-id: ${id}\r\nconnection: close\r\n\r\n`,
  );
  let sent = 0;
  return {
    answer,
    received: () => chunks.reduce((n, c) => n + c.length, 0),
    leave: () => socket.destroy(),
    async send(bytes) {
      const part = body.subarray(sent, sent + bytes);
      sent += part.length;
      if (socket.destroyed || part.length === 0) return;
      await new Promise<void>((resolve) => socket.write(part, () => resolve()));
    },
  };
}

/** An HTTP/1.1 answer with its whole Content-Length body; null when incomplete. */
function parseAnswer(bytes: Buffer): Answer | null {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const head = bytes.subarray(0, end).toString("latin1");
  const status = Number(head.split(" ")[1]);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  const body = bytes.subarray(end + 4);
  if (length === undefined || body.length < Number(length)) return null;
  return { status, body: body.subarray(0, Number(length)) };
}

/** A small seeded generator: the same seed plans the same requests. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What clients received, per tenant: whole 200s and their body bytes. */
export function receivedByTenant(
  results: readonly ClientResult[],
): Map<string, { ok: number; bytes: number }> {
  const byTenant = new Map<string, { ok: number; bytes: number }>();
  for (const r of results) {
    const sums = byTenant.get(r.tenant) ?? { ok: 0, bytes: 0 };
    if (r.status === 200) {
      sums.ok += 1;
      sums.bytes += r.bytes;
    }
    byTenant.set(r.tenant, sums);
  }
  return byTenant;
}

/** One tenant's figures after the load: what its clients received against what its usage says. */
export interface TenantFigures {
  tenant: string;
  receivedOk: number;
  receivedBytes: number;
  usageOk: number;
  usageBytesOut: number;
  /** Requests usage counts as client errors (499s of clients that left among them). */
  usageClientErrors: number;
  usageServerErrors: number;
  /** The status of one fresh request once the load is over. */
  servedAfter: number;
}

export interface AfterLoad {
  inFlight: number;
  stagingBytes: number;
  usageFlushed: boolean;
  tenants: TenantFigures[];
}

/** The node as the load left it, once its requests have ended and its usage is in the rollups. */
export async function afterLoad(
  node: ImgfleetNode,
  url: string,
  tenants: readonly LoadTenant[],
  results: readonly ClientResult[],
  image: Buffer,
): Promise<AfterLoad> {
  // Jobs of clients that left may still run; their requests end when those jobs settle.
  const settled = Date.now() + 60_000;
  while ((await inFlight(node)) > 0 || node.adapters.staging.bytes > 0) {
    if (Date.now() > settled) break;
    await sleep(50);
  }
  const usageFlushed = await node.usage.flush(30_000);
  const received = receivedByTenant(results);
  const figures: TenantFigures[] = [];
  for (const t of tenants) {
    const usage = await usageOf(node, t.id);
    const got = received.get(t.id) ?? { ok: 0, bytes: 0 };
    figures.push({
      tenant: t.id,
      receivedOk: got.ok,
      receivedBytes: got.bytes,
      usageOk: usage.ok?.requests ?? 0,
      usageBytesOut: usage.ok?.bytes_out ?? 0,
      usageClientErrors: usage.client_error?.requests ?? 0,
      usageServerErrors: usage.server_error?.requests ?? 0,
      servedAfter: 0,
    });
  }
  // Measured before the fresh requests below, which the gauge and usage would count.
  const left = { inFlight: await inFlight(node), stagingBytes: node.adapters.staging.bytes };
  for (const [i, t] of tenants.entries()) {
    const res = await fetch(`${url}/v1/resize?${FAST_QUERY}`, {
      method: "POST",
      body: image,
      headers: { authorization: `Bearer ${t.key}`, "content-type": "image/jpeg" },
    });
    await res.arrayBuffer();
    (figures[i] as TenantFigures).servedAfter = res.status;
  }
  return { ...left, usageFlushed, tenants: figures };
}

async function inFlight(node: ImgfleetNode): Promise<number> {
  const { values } = await node.metrics.inFlight.get();
  return values[0]?.value ?? 0;
}

interface OutcomeRow {
  outcome: string;
  requests: number;
  bytes_out: number;
}

async function usageOf(node: ImgfleetNode, tenant: string): Promise<Record<string, OutcomeRow>> {
  const rows = await node.adapters.db.query<OutcomeRow>(
    `SELECT outcome, sum(requests)::bigint AS requests, sum(bytes_out)::bigint AS bytes_out
     FROM usage_rollups WHERE granularity = 'day' AND tenant_id = $1 GROUP BY outcome`,
    [tenant],
  );
  return Object.fromEntries(rows.map((r) => [r.outcome, r]));
}
