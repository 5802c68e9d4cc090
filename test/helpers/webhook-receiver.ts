import { createHmac } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { onTestFinished } from "vitest";

export interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  /** The raw body, as a receiver must verify it (before parsing). */
  body: string;
  json: unknown;
  /** What the receiver answered. */
  status: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Resolves with the first request (in arrival order, including earlier ones) that `match` accepts. */
  next(match: (r: Received) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}

/**
 * A real webhook receiver on 127.0.0.1: records every request and answers
 * with `statuses` in turn (then 200). Closed when the test ends (with
 * `stopAfter: "manual"`, by `close()`: for one shared by a file).
 */
export async function startReceiver(
  statuses: number[] = [],
  options: { stopAfter?: "test" | "manual" } = {},
): Promise<Receiver> {
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  const answers = [...statuses];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const status = answers.shift() ?? 200;
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      received.push({ at: Date.now(), headers: request.headers, body, json, status });
      response.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : "nope");
      for (const wake of waiters) wake();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  if (options.stopAfter !== "manual") onTestFinished(close);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close,
    next(match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = received.find(match);
          if (!found) return false;
          cleanup();
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no matching webhook within ${timeoutMs} ms; got ${received.map((r) => r.body).join("\n")}`,
            ),
          );
        }, timeoutMs);
        const wake = () => void check();
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        waiters.add(wake);
        check();
      });
    },
  };
}

/** What a receiver does, written out independently of src/ (docs/alerts.md shows the same steps). */
export function verifiesWith(secret: string, r: Received, toleranceS = 300): boolean {
  const header = r.headers["x-imgfleet-signature"];
  if (typeof header !== "string") return false;
  const fields = Object.fromEntries(header.split(",").map((kv) => kv.split("=") as [string, string]));
  const t = Number(fields.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceS) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${r.body}`).digest("hex");
  return fields.v1 === expected;
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
