import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MappedResolver, SystemResolver } from "../../src/delivery/fetcher/resolver.js";
import {
  type FetchRequest,
  SourceFetcher,
  type SourceFetcherOptions,
} from "../../src/delivery/fetcher/source-fetcher.js";
import { ProblemError } from "../../src/errors/problem.js";
import { corpusFile, corpusFiles, hasCorpus } from "../helpers/corpus.js";
import { Origin, startSilentServer } from "../helpers/origin.js";

let origin: Origin;
let photo: Buffer;
let small: Buffer;
const fetchers: SourceFetcher[] = [];

/** Names the tests resolve: the origin's, and one per refused address class. */
const NAMES: Record<string, string | string[]> = {
  "origin.test": "127.0.0.1",
  "mixed.test": ["10.0.0.1", "127.0.0.1"],
  "loopback2.test": "127.0.0.2",
  "private.test": "10.0.0.7",
  "private172.test": "172.16.5.4",
  "private192.test": "192.168.1.10",
  "metadata.test": "169.254.169.254",
  "cgnat.test": "100.64.1.1",
  "ula.test": "fd00::1",
  "linklocal6.test": "fe80::1",
  "loopback6.test": "::1",
  "mapped.test": "::ffff:127.0.0.1",
  "mapped-metadata.test": "::ffff:169.254.169.254",
  "nat64.test": "64:ff9b::a00:1",
  "sixtofour.test": "2002:7f00:1::1",
  "teredo.test": "2001:0:4136:e378:8000:63bf:80ff:fffe",
  "multicast.test": "224.0.0.251",
  "unspecified.test": "0.0.0.0",
  "broadcast.test": "255.255.255.255",
  "documentation.test": "192.0.2.10",
};

function makeFetcher(options: Partial<SourceFetcherOptions> = {}): SourceFetcher {
  const fetcher = new SourceFetcher({
    resolver: new MappedResolver(NAMES),
    allowNetworks: ["127.0.0.1/32"],
    allowHttp: true,
    connectTimeoutMs: 5_000,
    totalTimeoutMs: 15_000,
    maxBytes: 20 * 1024 * 1024,
    ...options,
  });
  fetchers.push(fetcher);
  return fetcher;
}

const anySource = () => true;

function request(url: string, extra: Partial<FetchRequest> = {}): FetchRequest {
  return { url, isAllowedSource: anySource, ...extra };
}

async function problem(promise: Promise<unknown>): Promise<ProblemError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProblemError);
    return error as ProblemError;
  }
  throw new Error("the fetch succeeded");
}

beforeAll(async () => {
  origin = await Origin.start();
  small = await sharp({ create: { width: 64, height: 48, channels: 3, background: "#3366cc" } })
    .jpeg()
    .toBuffer();
  const jpeg = corpusFiles("good").find((name) => name.endsWith(".jpg"));
  photo = hasCorpus && jpeg ? corpusFile("good", jpeg) : small;
  origin.file("/photo.jpg", photo, { contentType: "text/plain" });
  origin.file("/small.jpg", small);
});

afterEach(() => {
  for (const fetcher of fetchers.splice(0)) fetcher.close();
});

afterAll(async () => {
  await origin.close();
});

describe("fetching from an allowed origin", () => {
  it("connects to the checked address, names the hostname in Host, and sniffs the format from the bytes", async () => {
    const result = await makeFetcher().fetch(request(origin.url("/photo.jpg", "origin.test")));
    expect(result.kind).toBe("fetched");
    if (result.kind !== "fetched") return;
    expect(result.bytes.equals(photo)).toBe(true);
    // Served as text/plain: the format comes from the bytes.
    expect(result.format).toEqual({ kind: "image", format: "jpeg" });
    expect(result.contentType).toBe("text/plain");
    expect(result.address).toBe("127.0.0.1");
    expect(result.etag).toMatch(/^"[0-9a-f]{16}"$/);
    expect(result.lastModified).toBe("Thu, 01 Jan 2026 00:00:00 GMT");
    expect(origin.lastHeaders("/photo.jpg")?.host).toBe(`origin.test:${origin.port}`);
  });

  it("a hostname with refused and permitted addresses is reached on a permitted one only", async () => {
    const result = await makeFetcher().fetch(request(origin.url("/small.jpg", "mixed.test")));
    expect(result).toMatchObject({ kind: "fetched", address: "127.0.0.1" });
  });

  it("revalidates with the cached ETag or Last-Modified: not-modified, no body", async () => {
    const fetcher = makeFetcher();
    const url = origin.url("/small.jpg", "origin.test");
    const first = await fetcher.fetch(request(url));
    const before = origin.requests("/small.jpg");
    const byEtag = await fetcher.fetch(request(url, { validators: { etag: first.etag } }));
    expect(byEtag).toMatchObject({
      kind: "not-modified",
      etag: first.etag,
      lastModified: first.lastModified,
    });
    expect(origin.lastHeaders("/small.jpg")?.["if-none-match"]).toBe(first.etag);
    const byDate = await fetcher.fetch(request(url, { validators: { lastModified: first.lastModified } }));
    expect(byDate.kind).toBe("not-modified");
    expect(origin.requests("/small.jpg")).toBe(before + 2);
    const stale = await fetcher.fetch(request(url, { validators: { etag: '"stale"' } }));
    expect(stale.kind).toBe("fetched");
  });

  it("follows up to 5 redirects, relative ones included, each hop re-checked", async () => {
    origin
      .redirect("/r1", origin.url("/r2", "origin.test"))
      .redirect("/r2", "/r3", 301)
      .redirect("/r3", "/r4", 307);
    origin.redirect("/r4", "/r5", 308).redirect("/r5", "/small.jpg", 303);
    const seen: string[] = [];
    const result = await makeFetcher().fetch(
      request(origin.url("/r1", "origin.test"), { isAllowedSource: (url) => seen.push(url.pathname) > 0 }),
    );
    expect(result).toMatchObject({
      kind: "fetched",
      redirects: 5,
      url: origin.url("/small.jpg", "origin.test"),
    });
    expect(seen).toEqual(["/r1", "/r2", "/r3", "/r4", "/r5", "/small.jpg"]);
  });

  it("a sixth redirect is a source-error", async () => {
    origin.redirect("/s0", "/r1");
    const refused = await problem(makeFetcher().fetch(request(origin.url("/s0", "origin.test"))));
    expect(refused).toMatchObject({ code: "source-error", status: 502 });
    expect(refused.message).toContain("more than 5");
    expect(origin.requests("/small.jpg")).toBeGreaterThan(0);
  });
});

describe("DNS rebinding: the address checked is the address connected", () => {
  /** Answers the allowed origin once, then an internal address: a rebinding attacker's DNS. */
  class RebindingResolver {
    calls = 0;
    async resolve(): Promise<{ address: string; family: 4 | 6 }[]> {
      this.calls++;
      return [{ address: this.calls === 1 ? "127.0.0.1" : "10.0.0.1", family: 4 }];
    }
  }

  it("each connection resolves once, and that very answer is judged and connected to", async () => {
    const resolver = new RebindingResolver();
    const url = origin.url("/small.jpg", "rebind.test");
    const first = await makeFetcher({ resolver }).fetch(request(url));
    expect(first).toMatchObject({ kind: "fetched", address: "127.0.0.1" });
    // No second lookup between the check and the connection for the attacker to answer.
    expect(resolver.calls).toBe(1);
    const refused = await problem(makeFetcher({ resolver }).fetch(request(url)));
    expect(refused).toMatchObject({ code: "source-forbidden", extras: { address: "10.0.0.1" } });
    expect(resolver.calls).toBe(2);
  });
});

describe("refused addresses: 403 source-forbidden, and no connection is made", () => {
  it("the origin's own hostname, when loopback is not allowed", async () => {
    origin.file("/never.jpg", small);
    const refused = await problem(
      makeFetcher({ allowNetworks: [] }).fetch(request(origin.url("/never.jpg", "origin.test"))),
    );
    expect(refused).toMatchObject({
      code: "source-forbidden",
      status: 403,
      extras: { host: "origin.test", address: "127.0.0.1", addressClass: "loopback" },
    });
    expect(origin.requests("/never.jpg")).toBe(0);
  });

  it.each([
    ["loopback2.test", "loopback"],
    ["private.test", "private"],
    ["private172.test", "private"],
    ["private192.test", "private"],
    ["metadata.test", "link-local"],
    ["cgnat.test", "cgnat"],
    ["ula.test", "unique-local"],
    ["linklocal6.test", "link-local"],
    ["loopback6.test", "loopback"],
    ["mapped.test", "loopback"],
    ["mapped-metadata.test", "link-local"],
    ["nat64.test", "private"],
    ["sixtofour.test", "loopback"],
    ["teredo.test", "loopback"],
    ["multicast.test", "multicast"],
    ["unspecified.test", "unspecified"],
    ["broadcast.test", "broadcast"],
    ["documentation.test", "documentation"],
  ])("a hostname resolving to a %s address (%s)", async (host, kind) => {
    const fetcher = makeFetcher({ allowNetworks: [] });
    const refused = await problem(fetcher.fetch(request(`http://${host}:${origin.port}/small.jpg`)));
    expect(refused.code).toBe("source-forbidden");
    expect(refused.extras).toMatchObject({ host, addressClass: kind });
  });

  it.each([
    ["http://127.0.0.1:PORT/small.jpg", "loopback"],
    ["http://[::1]:PORT/small.jpg", "loopback"],
    ["http://2130706433:PORT/small.jpg", "loopback"],
    ["http://0x7f.1:PORT/small.jpg", "loopback"],
    ["http://[::ffff:127.0.0.1]:PORT/small.jpg", "loopback"],
    ["http://169.254.169.254/latest/meta-data/", "link-local"],
    ["http://[fd00::1]/a.jpg", "unique-local"],
  ])("an address written in the URL: %s", async (template, kind) => {
    const before = origin.requests("/small.jpg");
    const fetcher = makeFetcher({ allowNetworks: [] });
    const refused = await problem(fetcher.fetch(request(template.replace("PORT", String(origin.port)))));
    expect(refused).toMatchObject({ code: "source-forbidden", extras: { addressClass: kind } });
    expect(origin.requests("/small.jpg")).toBe(before);
  });

  it("through the system resolver too: localhost is refused, and the origin never asked", async () => {
    origin.file("/local.jpg", small);
    const fetcher = makeFetcher({ resolver: new SystemResolver(), allowNetworks: [] });
    const refused = await problem(fetcher.fetch(request(origin.url("/local.jpg", "localhost"))));
    expect(refused).toMatchObject({
      code: "source-forbidden",
      extras: { host: "localhost", addressClass: "loopback" },
    });
    expect(origin.requests("/local.jpg")).toBe(0);
    const allowed = makeFetcher({
      resolver: new SystemResolver(),
      allowNetworks: ["127.0.0.0/8", "::1/128"],
    });
    expect((await allowed.fetch(request(origin.url("/local.jpg", "localhost")))).kind).toBe("fetched");
  });

  it("a redirect to a hostname that resolves to a private address", async () => {
    origin.redirect("/to-private", `http://private.test:${origin.port}/small.jpg`);
    const refused = await problem(makeFetcher().fetch(request(origin.url("/to-private", "origin.test"))));
    expect(refused).toMatchObject({
      code: "source-forbidden",
      extras: { host: "private.test", addressClass: "private" },
    });
  });

  it("a redirect to the metadata service, and to a loopback address outside the allowed network", async () => {
    origin.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/iam/");
    origin.redirect("/to-loopback", `http://127.0.0.2:${origin.port}/small.jpg`);
    const fetcher = makeFetcher();
    const metadata = await problem(fetcher.fetch(request(origin.url("/to-metadata", "origin.test"))));
    expect(metadata).toMatchObject({ code: "source-forbidden", extras: { addressClass: "link-local" } });
    const loopback = await problem(fetcher.fetch(request(origin.url("/to-loopback", "origin.test"))));
    expect(loopback).toMatchObject({ code: "source-forbidden", extras: { address: "127.0.0.2" } });
  });
});

describe("allowed sources and schemes: 403 source-not-allowed", () => {
  const onlyUnder = (prefix: string) => (url: URL) => url.href.startsWith(prefix);

  it("a URL outside the tenant's sources is never requested", async () => {
    origin.file("/elsewhere.jpg", small);
    const refused = await problem(
      makeFetcher().fetch(
        request(origin.url("/elsewhere.jpg", "origin.test"), {
          isAllowedSource: onlyUnder("https://cdn.example/"),
        }),
      ),
    );
    expect(refused).toMatchObject({ code: "source-not-allowed", status: 403 });
    expect(origin.requests("/elsewhere.jpg")).toBe(0);
  });

  it("a redirect out of the tenant's sources is not followed", async () => {
    origin.redirect("/allowed/hop", origin.url("/outside.jpg", "origin.test"));
    origin.file("/outside.jpg", small);
    const refused = await problem(
      makeFetcher().fetch(
        request(origin.url("/allowed/hop", "origin.test"), {
          isAllowedSource: onlyUnder(origin.url("/allowed/", "origin.test")),
        }),
      ),
    );
    expect(refused).toMatchObject({
      code: "source-not-allowed",
      extras: { url: origin.url("/outside.jpg", "origin.test") },
    });
    expect(origin.requests("/outside.jpg")).toBe(0);
  });

  it("http is refused unless allowed, before any request", async () => {
    const before = origin.requests("/small.jpg");
    const refused = await problem(
      makeFetcher({ allowHttp: false }).fetch(request(origin.url("/small.jpg", "origin.test"))),
    );
    expect(refused.code).toBe("source-not-allowed");
    expect(refused.message).toContain("https only");
    expect(origin.requests("/small.jpg")).toBe(before);
  });

  it("other schemes are refused", async () => {
    for (const url of ["ftp://origin.test/a.jpg", "file:///etc/passwd"]) {
      expect((await problem(makeFetcher().fetch(request(url)))).code).toBe("source-not-allowed");
    }
  });
});

describe("origin failures map to problem types", () => {
  it("404 and 410 are source-not-found; 500 and 403 are source-error with the origin's status", async () => {
    origin.fail("/gone", 410).fail("/broken", 500).fail("/denied", 403);
    const fetcher = makeFetcher();
    const at = (path: string) => request(origin.url(path, "origin.test"));
    expect(await problem(fetcher.fetch(at("/missing.jpg")))).toMatchObject({
      code: "source-not-found",
      status: 404,
      extras: { originStatus: 404 },
    });
    expect((await problem(fetcher.fetch(at("/gone")))).code).toBe("source-not-found");
    expect(await problem(fetcher.fetch(at("/broken")))).toMatchObject({
      code: "source-error",
      status: 502,
      extras: { originStatus: 500 },
    });
    expect(await problem(fetcher.fetch(at("/denied")))).toMatchObject({
      code: "source-error",
      extras: { originStatus: 403 },
    });
  });

  it("a host that does not resolve is a source-error", async () => {
    const refused = await problem(makeFetcher().fetch(request("http://nowhere.test/a.jpg")));
    expect(refused.code).toBe("source-error");
    expect(refused.message).toContain("could not be resolved");
  });

  it("a body that is no image is refused as unsupported-format; an empty one is a source-error", async () => {
    origin.file("/page.html", Buffer.from(`<!doctype html><title>hi</title>${" ".repeat(8000)}`), {
      contentType: "image/jpeg",
    });
    origin.file("/empty.jpg", Buffer.alloc(0));
    const fetcher = makeFetcher();
    expect(await problem(fetcher.fetch(request(origin.url("/page.html", "origin.test"))))).toMatchObject({
      code: "unsupported-format",
      status: 415,
    });
    expect((await problem(fetcher.fetch(request(origin.url("/empty.jpg", "origin.test"))))).code).toBe(
      "source-error",
    );
  });

  it("an origin that cuts the body short is a source-error", async () => {
    origin.cutBody("/cut.jpg", small.subarray(0, 100), small.length);
    const refused = await problem(makeFetcher().fetch(request(origin.url("/cut.jpg", "origin.test"))));
    expect(refused.code).toBe("source-error");
  });
});

describe("time limits: 504 source-timeout", () => {
  it("an origin slower than the total limit", async () => {
    origin.slow("/slow.jpg", 10_000, small);
    const refused = await problem(
      makeFetcher({ totalTimeoutMs: 400 }).fetch(request(origin.url("/slow.jpg", "origin.test"))),
    );
    expect(refused).toMatchObject({ code: "source-timeout", status: 504, extras: { limit: "total" } });
  });

  it("a body that stops arriving", async () => {
    origin.stallBody("/stall.jpg", small.subarray(0, 200), small.length);
    const refused = await problem(
      makeFetcher({ totalTimeoutMs: 400 }).fetch(request(origin.url("/stall.jpg", "origin.test"))),
    );
    expect(refused).toMatchObject({ code: "source-timeout", extras: { limit: "total" } });
  });

  it("a connection (TCP and TLS) slower than the connect limit", async () => {
    const silent = await startSilentServer();
    try {
      const fetcher = makeFetcher({
        resolver: new MappedResolver({ "silent.test": "127.0.0.1" }),
        connectTimeoutMs: 300,
      });
      const refused = await problem(fetcher.fetch(request(`https://silent.test:${silent.port}/a.jpg`)));
      expect(refused).toMatchObject({ code: "source-timeout", extras: { limit: "connect" } });
      expect(refused.message).toContain("silent.test");
      expect(silent.connections()).toBe(1);
    } finally {
      await silent.close();
    }
  });
});

describe("the byte limit, enforced while streaming: 422 source-too-large", () => {
  const TOTAL = 64 * 1024 * 1024;

  it("a declared Content-Length over the limit is refused before the body", async () => {
    origin.oversized("/declared.jpg", small, TOTAL, true);
    const refused = await problem(
      makeFetcher({ maxBytes: 1024 * 1024 }).fetch(request(origin.url("/declared.jpg", "origin.test"))),
    );
    expect(refused).toMatchObject({
      code: "source-too-large",
      status: 422,
      extras: { maxBytes: 1024 * 1024 },
    });
    await expect.poll(() => origin.bytesSent("/declared.jpg")).toBeGreaterThan(0);
    expect(origin.bytesSent("/declared.jpg")).toBeLessThan(TOTAL / 4);
  });

  it("an undeclared stream is cut past the limit, not read to its end", async () => {
    origin.oversized("/chunked.jpg", small, TOTAL, false);
    const refused = await problem(
      makeFetcher({ maxBytes: 1024 * 1024 }).fetch(request(origin.url("/chunked.jpg", "origin.test"))),
    );
    expect(refused.code).toBe("source-too-large");
    expect(origin.bytesSent("/chunked.jpg")).toBeLessThan(TOTAL / 4);
  });

  it("a fetch may ask for less than the fetcher's limit, never more", async () => {
    const fetcher = makeFetcher({ maxBytes: 1024 * 1024 });
    const url = origin.url("/small.jpg", "origin.test");
    expect((await problem(fetcher.fetch(request(url, { maxBytes: 100 })))).code).toBe("source-too-large");
    expect((await fetcher.fetch(request(url, { maxBytes: 10 * 1024 * 1024 }))).kind).toBe("fetched");
    origin.oversized("/two-mb.jpg", small, 2 * 1024 * 1024, true);
    const refused = await problem(
      fetcher.fetch(request(origin.url("/two-mb.jpg", "origin.test"), { maxBytes: 10 * 1024 * 1024 })),
    );
    expect(refused.code).toBe("source-too-large");
  });
});

describe("https: the certificate is checked against the hostname while the checked address is connected", () => {
  let dir: string;
  let server: HttpsServer;
  let port: number;
  let cert: string;
  const servedNames: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "imgfleet-origin-tls-"));
    execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=secure.test"],
        ...[
          "-addext",
          "subjectAltName=DNS:secure.test",
          "-keyout",
          join(dir, "key.pem"),
          "-out",
          join(dir, "cert.pem"),
        ],
      ],
      { stdio: "ignore" },
    );
    cert = readFileSync(join(dir, "cert.pem"), "utf8");
    server = createHttpsServer({ key: readFileSync(join(dir, "key.pem")), cert }, (req, res) => {
      servedNames.push(String((req.socket as TLSSocket).servername));
      res.writeHead(200, { "content-type": "image/jpeg" }).end(small);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const resolver = new MappedResolver({ "secure.test": "127.0.0.1", "impostor.test": "127.0.0.1" });

  it("fetches over TLS with the hostname as SNI and certificate name", async () => {
    const fetcher = makeFetcher({ resolver, ca: cert, allowHttp: false });
    const result = await fetcher.fetch(request(`https://secure.test:${port}/a.jpg`));
    expect(result).toMatchObject({ kind: "fetched", address: "127.0.0.1", format: { format: "jpeg" } });
    expect(servedNames).toEqual(["secure.test"]);
  });

  it("a certificate for another name is a source-error", async () => {
    const fetcher = makeFetcher({ resolver, ca: cert });
    const refused = await problem(fetcher.fetch(request(`https://impostor.test:${port}/a.jpg`)));
    expect(refused.code).toBe("source-error");
    expect(refused.message).toMatch(/altnames|certificate/i);
  });
});
