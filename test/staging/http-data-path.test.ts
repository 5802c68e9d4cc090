import { createServer, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { describe, expect, it, onTestFinished } from "vitest";
import { internalRoutes } from "../../src/api/internal/data-path-routes.js";
import { freePort } from "../../src/dev/ports.js";
import {
  ClusterVerifier,
  HEADERS,
  outcomeHeader,
  resultPath,
  SIGNED_HEADERS,
  signRequest,
  stagedPath,
} from "../../src/staging/data-path-protocol.js";
import { HttpDataPath } from "../../src/staging/http-data-path.js";
import type { JobOutcome } from "../../src/staging/job-outcome.js";
import { PendingResults } from "../../src/staging/pending-results.js";
import { StagingTable } from "../../src/staging/staging-table.js";
import { message } from "../queue/job-queue.contract.js";
import { describeJobDataPath } from "./data-path.contract.js";

const SECRET = "a-cluster-secret-of-enough-length-0123456789";

/** A real HTTP server with the API node's internal routes, on a free port. */
async function apiNode(secret = SECRET, port = 0) {
  const staging = new StagingTable(16 * 1024 * 1024);
  const pending = new PendingResults();
  const app = Fastify();
  await app.register(async (scope) => internalRoutes(scope, { staging, pending, clusterSecret: secret }));
  await app.listen({ host: "127.0.0.1", port });
  onTestFinished(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const stage = (key: string, bytes: Buffer) => {
    staging.reserve(key, bytes.length);
    staging.fill(key, bytes);
  };
  return { url, staging, pending, stage };
}

/** A bare HTTP server that misbehaves as told, closed (with its connections) after the test. */
async function plainServer(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onTestFinished(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function pathTo(url: string, secret = SECRET) {
  return new HttpDataPath({
    clusterSecret: secret,
    attemptTimeoutMs: 2000,
    maxResponseBytes: 1024 * 1024,
    resolveNode: () => url,
  });
}

describeJobDataPath("HTTP between nodes", async () => {
  const node = await apiNode();
  return {
    path: pathTo(node.url),
    stage: node.stage,
    awaitResult: (jobId) => node.pending.wait(jobId, new AbortController().signal),
  };
});

describe("fleet data path over HTTP", () => {
  it("carries a successful result's image bytes and metadata intact", async () => {
    const node = await apiNode();
    const job = message({ input: { node: "api-1", key: "k1", bytes: 3, url: node.url } });
    const outcome: JobOutcome = {
      ok: true,
      data: Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]),
      info: { format: "jpeg", width: 10, height: 5, bytes: 5, pages: 1 },
      timings: { queueMs: 1.5, fetchMs: 0.5, processMs: 7, cpuMs: 6.5 },
    };
    const waiting = node.pending.wait(job.id, new AbortController().signal);
    expect(
      await new HttpDataPath({
        clusterSecret: SECRET,
        attemptTimeoutMs: 2000,
        maxResponseBytes: 1024 * 1024,
      }).postResult(job, outcome),
    ).toBe(true);
    expect(await waiting).toEqual(outcome);
  });

  it("refuses requests signed with another secret, saying so in a header the worker logs", async () => {
    const node = await apiNode();
    node.stage("k", Buffer.from("bytes"));
    const ref = { node: "api-1", key: "k", bytes: 5, url: node.url };
    await expect(
      pathTo(node.url, "another-secret-entirely-0123456789abcdef").fetchInput(ref, Date.now() + 300),
    ).rejects.toThrow(/before the job's deadline/);
    const path = stagedPath("k");
    const res = await fetch(`${node.url}${path}`, {
      headers: signRequest("wrong-secret-xxxxxxxxxxxxxxxxxxxxxxxx", { method: "GET", path }),
    });
    expect([res.status, res.headers.get("x-imgfleet-auth")]).toEqual([401, "signature"]);
  });

  it("refuses unsigned, stale and replayed requests", async () => {
    const node = await apiNode();
    node.stage("k", Buffer.from("bytes"));
    const path = stagedPath("k");
    const status = async (headers: Record<string, string>) => {
      const res = await fetch(`${node.url}${path}`, { headers });
      await res.arrayBuffer();
      return [res.status, res.headers.get("x-imgfleet-auth")];
    };
    expect(await status({})).toEqual([401, "missing"]);
    expect(await status(signRequest(SECRET, { method: "GET", path }, Date.now() - 60_000))).toEqual([
      401,
      "stale",
    ]);
    const once = signRequest(SECRET, { method: "GET", path });
    expect(await status(once)).toEqual([200, null]);
    expect(await status(once)).toEqual([401, "replayed"]);
  });

  it("refuses a result whose body was changed after signing", async () => {
    const node = await apiNode();
    const path = resultPath("job-x");
    const signed = signRequest(SECRET, { method: "POST", path, body: Buffer.from("original") });
    const res = await fetch(`${node.url}${path}`, {
      method: "POST",
      body: Buffer.from("tampered"),
      headers: { ...signed, "content-type": "application/octet-stream" },
    });
    expect([res.status, res.headers.get("x-imgfleet-auth")]).toEqual([401, "signature"]);
  });

  describe("a signed result changed on the way", () => {
    const timings = { queueMs: 1, fetchMs: 1, processMs: 50, cpuMs: 40 };
    const info = { format: "avif" as const, width: 10, height: 5, bytes: 5, pages: 1 };
    const image = Buffer.from([1, 2, 3, 4, 5]);
    const billed = outcomeHeader({ ok: true, data: image, info, timings });

    /** Signs a result for job-a, lets `tamper` change what is sent, and answers status and refusal reason. */
    async function post(
      tamper: (sent: { method: string; path: string; headers: Record<string, string>; body: Buffer }) => void,
    ) {
      const node = await apiNode();
      const waiting = node.pending.wait("job-a", new AbortController().signal);
      void waiting.catch(() => undefined);
      const path = resultPath("job-a");
      const headers = signRequest(SECRET, {
        method: "POST",
        path,
        headers: { [HEADERS.outcome]: billed },
        body: image,
      });
      const sent = {
        method: "POST",
        path,
        headers: { ...headers, "content-type": "application/octet-stream" },
        body: image,
      };
      tamper(sent);
      const res = await fetch(`${node.url}${sent.path}`, {
        method: sent.method,
        headers: sent.headers,
        body: sent.method === "GET" ? undefined : sent.body,
      });
      await res.arrayBuffer();
      return [res.status, res.headers.get(HEADERS.authFailure)];
    }

    it("is accepted untouched", async () => {
      expect(await post(() => {})).toEqual([204, null]);
    });

    it("is refused when its outcome (format, billed CPU) was changed", async () => {
      const cheaper = outcomeHeader({
        ok: true,
        data: image,
        info: { ...info, format: "jpeg" },
        timings: { ...timings, cpuMs: 0 },
      });
      expect(
        await post((s) => {
          s.headers[HEADERS.outcome] = cheaper;
        }),
      ).toEqual([401, "signature"]);
      expect(await post((s) => void delete s.headers[HEADERS.outcome])).toEqual([401, "signature"]);
    });

    it("is refused when its timestamp or nonce was changed", async () => {
      const later = (s: { headers: Record<string, string> }) => {
        s.headers[HEADERS.timestamp] = String(Number(s.headers[HEADERS.timestamp]) + 1);
      };
      expect(await post(later)).toEqual([401, "signature"]);
      expect(
        await post((s) => {
          s.headers[HEADERS.nonce] = "another-nonce-0123456789";
        }),
      ).toEqual([401, "signature"]);
    });

    it("is refused when its path, query, body or method was changed", async () => {
      expect(
        await post((s) => {
          s.path = resultPath("job-b");
        }),
      ).toEqual([401, "signature"]);
      expect(
        await post((s) => {
          s.path = `${s.path}?cpu=0`;
        }),
      ).toEqual([401, "signature"]);
      expect(
        await post((s) => {
          s.body = Buffer.from([9, 9, 9, 9, 9]);
        }),
      ).toEqual([401, "signature"]);
      // No route takes two methods on one path, so the method is checked on the verifier itself.
      const verifier = new ClusterVerifier(SECRET);
      const path = resultPath("job-a");
      const signed = signRequest(SECRET, { method: "POST", path, body: image });
      expect(verifier.verify("PUT", path, signed, image)).toBe("signature");
      expect(verifier.verify("POST", path, signed, image)).toBeNull();
    });

    it("is refused when it carries a header of ours the signature does not cover", async () => {
      expect(
        await post((s) => {
          s.headers["x-imgfleet-cpu-ms"] = "0";
        }),
      ).toEqual([401, "unsigned"]);
      // Every header of ours that carries meaning is covered; the list is the protocol's, not this test's.
      expect(SIGNED_HEADERS).toEqual(
        expect.arrayContaining([HEADERS.outcome, HEADERS.timestamp, HEADERS.nonce]),
      );
    });
  });

  it("retries a node that is briefly unreachable within the job's deadline, and gives up at the deadline", async () => {
    const port = await freePort();
    const path = pathTo(`http://127.0.0.1:${port}`);
    const fetching = path.fetchInput({ node: "api-1", key: "k", bytes: 10 }, Date.now() + 10_000);
    // The node comes up only after the worker's first attempts have failed.
    await new Promise((r) => setTimeout(r, 300));
    const node = await apiNode(SECRET, port);
    node.stage("k", Buffer.from("late bytes"));
    expect(await fetching).toEqual(Buffer.from("late bytes"));
    const unreachable = pathTo(`http://127.0.0.1:${await freePort()}`);
    await expect(
      unreachable.fetchInput({ node: "gone", key: "k", bytes: 1 }, Date.now() + 400),
    ).rejects.toThrow(/could not fetch the staged input/);
  });

  it("fails at once when a node answers with more bytes than an input may have", async () => {
    let calls = 0;
    const url = await plainServer((_req, res) => {
      calls++;
      res.end(Buffer.alloc(2 * 1024 * 1024, 7));
    });
    const path = new HttpDataPath({
      clusterSecret: SECRET,
      attemptTimeoutMs: 2000,
      maxResponseBytes: 1024 * 1024,
      resolveNode: () => url,
    });
    await expect(
      path.fetchInput({ node: "api-1", key: "big", bytes: 1 }, Date.now() + 10_000),
    ).rejects.toThrow(
      expect.objectContaining({ cause: expect.objectContaining({ name: "ResponseTooLargeError" }) }),
    );
    // Not retried: a bound exceeded once will be exceeded again.
    expect(calls).toBe(1);
    path.close();
  });

  it("abandons an attempt that trickles past its bound and tries again", async () => {
    let calls = 0;
    const url = await plainServer((_req, res) => {
      calls++;
      res.writeHead(200, { "content-length": "10" });
      res.write("part"); // and never the rest
    });
    const path = new HttpDataPath({
      clusterSecret: SECRET,
      attemptTimeoutMs: 200,
      maxResponseBytes: 1024,
      resolveNode: () => url,
    });
    await expect(path.fetchInput({ node: "api-1", key: "k", bytes: 10 }, Date.now() + 1_000)).rejects.toThrow(
      /before the job's deadline/,
    );
    expect(calls).toBeGreaterThan(1);
    path.close();
  });
});
