import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { groupRecords, type MeterRecord } from "../../src/usage/model.js";
import { rollupStore } from "../../src/usage/rollup-store.js";
import { useNode } from "../helpers/node.js";

/**
 * /v1/usage (a tenant's own usage, with a `usage:read` key) and
 * /admin/v1/usage (every tenant, JSON or CSV) over real HTTP, on rollups
 * written through the aggregator's write path.
 */

interface Problem {
  type: string;
  status: number;
  detail: string;
  errors?: string[];
  [extra: string]: unknown;
}

interface Row {
  tenant: string;
  period: string;
  outcome?: string;
  requests: number;
  succeeded?: number;
  clientErrors?: number;
  serverErrors?: number;
  bytesIn: number;
  bytesOut: number;
  pixelsIn: number;
  pixelsOut: number;
  cpuMs: number;
}

interface Report {
  granularity: string;
  from: string;
  to: string;
  tenant: string | null;
  byOutcome: boolean;
  rows: Row[];
  totals: Record<string, number>;
}

interface Estimate {
  tenant: string;
  month: string;
  currency: string;
  partial: boolean;
  quantities: Record<string, number>;
  lines: Array<{ item: string; unit: string; quantity: number; unitPrice: number; amount: number }>;
  total: number;
}

interface Summary {
  month: string;
  currency: string;
  partial: boolean;
  tenants: Estimate[];
  total: number;
}

const node = useNode({
  usage: { prices: { currency: "EUR", per1000Requests: 2, perGbIn: 0.5, perGbOut: 1, perMegapixel: 0.01 } },
});

function record(tenant: string, at: string, status: number, inBytes = 0, inPixels = 0): MeterRecord {
  return {
    id: randomUUID(),
    tenant,
    key: null,
    at: Date.parse(at),
    op: "resize",
    status,
    inBytes,
    outBytes: Math.floor(inBytes / 4),
    inPixels,
    outPixels: Math.floor(inPixels / 16),
    inFormat: "jpeg",
    outFormat: "webp",
    queueMs: 1,
    processMs: 3,
    cpuMs: 2.5,
  };
}

async function ingest(records: MeterRecord[]): Promise<void> {
  const batch = {
    id: randomUUID(),
    node: "test",
    sealedAt: Date.now(),
    groups: groupRecords(records),
    records,
  };
  expect((await rollupStore.apply(node().node.adapters.db, batch)).claimed).toBe(true);
}

function get(path: string, key?: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${node().url}${path}`, {
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
  });
}

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function problem(res: Response, status: number, type: string): Promise<Problem> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  const doc = JSON.parse(text) as Problem;
  expect(doc.type).toBe(`/problems/${type}`);
  return doc;
}

async function newTenant(name: string, limits: Record<string, number> = {}): Promise<string> {
  const res = await node().admin("POST", "/tenants", {
    name: `${name}-${randomUUID().slice(0, 8)}`,
    ...limits,
  });
  return (await json<{ id: string }>(res, 201)).id;
}

async function newKey(tenant: string, scopes: string[]): Promise<string> {
  const res = await node().admin("POST", `/tenants/${tenant}/keys`, { scopes });
  return (await json<{ secret: string }>(res, 201)).secret;
}

/** New keys reach the data plane through the outbox a moment after the write. */
async function eventually(check: () => Promise<number>, want: number, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const got = await check();
    if (got === want) return;
    if (Date.now() > until) throw new Error(`expected ${want}, still ${got}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** RFC 4180: quoted fields may hold commas, doubled quotes and line breaks; records end with CRLF. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      fields.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      fields.push(field);
      records.push(fields);
      fields = [];
      field = "";
      i++;
    } else field += c;
  }
  expect(field, "the last record ends with CRLF").toBe("");
  return records;
}

/** CSV records as objects, numbers back as numbers, to compare with the JSON rows. */
function csvObjects(text: string): Array<Record<string, string | number>> {
  const [header = [], ...rows] = parseCsv(text);
  return rows.map((r) =>
    Object.fromEntries(
      header.map((h, i) => [h, /^-?\d+(\.\d+)?$/.test(r[i] ?? "") ? Number(r[i]) : (r[i] ?? "")]),
    ),
  );
}

// February 2025 belongs to this file's data: A, B, a tenant deleted afterwards, and a tenant id with a comma and quotes.
const RANGE = "from=2025-02-01&to=2025-03-01";
const ODD_TENANT = 'odd,"tenant"';

describe("usage over HTTP", () => {
  let a: string;
  let aKey: string;
  let b: string;
  let bKey: string;
  let gone: string;

  beforeAll(async () => {
    a = node().tenant;
    aKey = node().apiKey;
    b = await newTenant("usage-b");
    bKey = await newKey(b, ["usage:read"]);
    gone = await newTenant("usage-gone");
    await ingest([
      record(a, "2025-02-03T10:15:00Z", 200, 2_000_000, 4_000_000),
      record(a, "2025-02-03T10:45:00Z", 200, 1_000_000, 1_000_000),
      record(a, "2025-02-03T11:05:00Z", 400, 500_000),
      record(a, "2025-02-28T23:59:59Z", 502, 700_000),
      record(a, "2025-03-01T00:00:00Z", 200, 9_000_000),
      record(b, "2025-02-03T10:30:00Z", 200, 3_000_000, 2_000_000),
      record(b, "2025-02-14T12:00:00Z", 200, 1_500_000),
      record(gone, "2025-02-10T08:00:00Z", 200, 800_000, 500_000),
      record(ODD_TENANT, "2025-02-20T00:00:00Z", 200, 100, 100),
    ]);
    // A deleted tenant's usage is still the operator's to see and bill.
    await json(await node().admin("DELETE", `/tenants/${gone}`));
    await eventually(async () => (await get(`/v1/usage?${RANGE}`, bKey)).status, 200);
  });

  describe("/v1/usage (tenant)", () => {
    it("shows each key its own tenant's usage only, with the RateLimit headers", async () => {
      const [resA, resB] = await Promise.all([
        get(`/v1/usage?${RANGE}`, aKey),
        get(`/v1/usage?${RANGE}`, bKey),
      ]);
      expect(resA.headers.get("ratelimit-limit")).toMatch(/^\d+$/);
      expect(resA.headers.get("ratelimit-remaining")).toMatch(/^\d+$/);
      const mine = await json<Report>(resA);
      const theirs = await json<Report>(resB);
      expect(mine).toMatchObject({
        tenant: a,
        granularity: "day",
        from: "2025-02-01T00:00:00.000Z",
        byOutcome: false,
      });
      expect(mine.rows.every((r) => r.tenant === a)).toBe(true);
      expect(
        mine.rows.map((r) => [r.period, r.requests, r.succeeded, r.clientErrors, r.serverErrors]),
      ).toEqual([
        ["2025-02-03T00:00:00.000Z", 3, 2, 1, 0],
        ["2025-02-28T00:00:00.000Z", 1, 0, 0, 1],
      ]);
      expect(mine.totals).toMatchObject({
        requests: 4,
        succeeded: 2,
        bytesIn: 3_000_000,
        pixelsIn: 5_000_000,
      });
      expect(theirs.tenant).toBe(b);
      expect(theirs.rows.map((r) => r.tenant)).toEqual([b, b]);
      expect(theirs.totals).toMatchObject({ requests: 2, bytesIn: 4_500_000 });

      const hourly = await json<Report>(
        await get(`/v1/usage?from=2025-02-03&to=2025-02-04&granularity=hour`, aKey),
      );
      expect(hourly.rows.map((r) => [r.period, r.requests])).toEqual([
        ["2025-02-03T10:00:00.000Z", 2],
        ["2025-02-03T11:00:00.000Z", 1],
      ]);
    });

    it("refuses a tenant parameter and unknown or malformed ones as invalid-body", async () => {
      const named = await problem(await get(`/v1/usage?${RANGE}&tenant=${b}`, aKey), 400, "invalid-body");
      expect(named.errors?.[0]).toMatch(
        /^tenant: not accepted here: an API key sees only its own tenant's usage/,
      );
      const costNamed = await problem(await get(`/v1/usage/cost?tenant=${b}`, aKey), 400, "invalid-body");
      expect(costNamed.detail).toContain("tenant: not accepted here");
      const unknown = await problem(await get(`/v1/usage?since=2025-02-01`, aKey), 400, "invalid-body");
      expect(unknown.errors?.join()).toContain("since");
      const bad = await problem(
        await get(`/v1/usage?from=last-week&granularity=minute`, aKey),
        400,
        "invalid-body",
      );
      expect(bad.errors).toHaveLength(2);
      expect(bad.errors?.find((e) => e.startsWith("from:"))).toContain("ISO 8601");
      expect(bad.errors?.find((e) => e.startsWith("granularity:"))).toBeDefined();
      const long = await problem(
        await get(`/v1/usage?from=2025-01-01&to=2025-03-01&granularity=hour`, aKey),
        400,
        "invalid-body",
      );
      expect(long.detail).toContain("hourly usage spans at most 31 days");
      const inverted = await problem(
        await get(`/v1/usage?from=2025-03-01&to=2025-02-01`, aKey),
        400,
        "invalid-body",
      );
      expect(inverted.detail).toContain("to: must be after from");
    });

    it("needs a key with usage:read: 401 without one, 403 missing-scope without the scope", async () => {
      const resizeOnly = await newKey(a, ["resize"]);
      await eventually(async () => (await get("/v1/usage", resizeOnly)).status, 403);
      const missing = await problem(await get("/v1/usage", resizeOnly), 403, "missing-scope");
      expect(missing.requiredScope).toBe("usage:read");
      await problem(await get("/v1/usage/cost", resizeOnly), 403, "missing-scope");
      const anonymous = await get("/v1/usage");
      expect(anonymous.headers.get("www-authenticate")).toContain("Bearer");
      await problem(anonymous, 401, "unauthenticated");
      await problem(await get("/v1/usage/cost"), 401, "unauthenticated");
      // An admin key is not a tenant's key.
      await problem(await get("/v1/usage", node().adminKey), 403, "wrong-key-type");
    });

    it("gives back the in-flight slot however the request ends", async () => {
      const solo = await newTenant("usage-solo", { maxInFlight: 1 });
      const key = await newKey(solo, ["usage:read"]);
      await eventually(async () => (await get("/v1/usage", key)).status, 200);
      // With one slot, a leaked slot would make every later request a 429.
      for (let i = 0; i < 3; i++) {
        await problem(await get("/v1/usage?granularity=week", key), 400, "invalid-body");
        await problem(await get("/v1/usage/cost?month=2025-13", key), 400, "invalid-body");
        await json(await get("/v1/usage", key));
        await json(await get("/v1/usage/cost", key));
      }
    });

    it("defaults to this month so far and estimates the caller's own cost", async () => {
      const fresh = await newTenant("usage-now");
      const key = await newKey(fresh, ["usage:read"]);
      const now = new Date();
      await ingest([
        record(fresh, new Date(now.getTime() - 5000).toISOString(), 200, 4_000_000_000, 50_000_000),
      ]);
      await eventually(async () => (await get("/v1/usage", key)).status, 200);
      const report = await json<Report>(await get("/v1/usage", key));
      const monthStart = `${now.toISOString().slice(0, 7)}-01T00:00:00.000Z`;
      expect(report.from).toBe(monthStart);
      expect(report.rows).toHaveLength(1);
      expect(report.rows[0]).toMatchObject({ tenant: fresh, requests: 1, bytesIn: 4_000_000_000 });

      const cost = await json<Estimate>(await get("/v1/usage/cost", key));
      expect(cost).toMatchObject({
        tenant: fresh,
        month: now.toISOString().slice(0, 7),
        partial: true,
        currency: "EUR",
      });
      // The node's price plan: 2 per 1000 requests, 0.5 per GB in, 1 per GB out, 0.01 per megapixel, CPU at the default.
      expect(cost.lines.map((l) => [l.item, l.unitPrice])).toEqual([
        ["requests", 2],
        ["gbIn", 0.5],
        ["gbOut", 1],
        ["megapixels", 0.01],
        ["cpuHours", 0.05],
      ]);
      const unrounded = (1 / 1000) * 2 + 4 * 0.5 + 1 * 1 + 50 * 0.01 + (2.5 / 3_600_000) * 0.05;
      expect(cost.total).toBe(Math.round(unrounded * 100) / 100);

      const past = await json<Estimate>(await get("/v1/usage/cost?month=2025-02", aKey));
      expect(past).toMatchObject({ tenant: a, month: "2025-02", partial: false });
      expect(past.quantities).toMatchObject({ requests: 2, gbIn: 0.003, megapixels: 5 });
      const badMonth = await problem(await get("/v1/usage/cost?month=Feb", aKey), 400, "invalid-body");
      expect(badMonth.errors?.[0]).toContain("month: must be a month such as 2026-03");
    });
  });

  describe("/admin/v1/usage (operator)", () => {
    it("reports every tenant, deleted ones included, or one tenant, and 404s a tenant that never existed", async () => {
      const all = await json<Report>(await node().admin("GET", `/usage?${RANGE}`));
      expect(all.tenant).toBeNull();
      expect(all.rows.map((r) => [r.period.slice(0, 10), r.tenant])).toEqual([
        ...[a, b].sort().map((t) => ["2025-02-03", t]),
        ["2025-02-10", gone],
        ["2025-02-14", b],
        ["2025-02-20", ODD_TENANT],
        ["2025-02-28", a],
      ]);
      expect(all.totals.requests).toBe(8);

      const deleted = await json<Report>(await node().admin("GET", `/usage?${RANGE}&tenant=${gone}`));
      expect(deleted.rows).toHaveLength(1);
      expect(deleted.rows[0]).toMatchObject({ tenant: gone, requests: 1, bytesIn: 800_000 });

      const one = await json<Report>(
        await node().admin("GET", `/usage?${RANGE}&tenant=${b}&granularity=hour`),
      );
      expect(one.rows.map((r) => r.period)).toEqual(["2025-02-03T10:00:00.000Z", "2025-02-14T12:00:00.000Z"]);

      const unknown = await problem(
        await node().admin("GET", `/usage?${RANGE}&tenant=ten_00000000000000000000000000`),
        404,
        "not-found",
      );
      expect(unknown.detail).toContain("no tenant ten_00000000000000000000000000");
    });

    it("splits rows by outcome with by=outcome", async () => {
      const report = await json<Report>(await node().admin("GET", `/usage?${RANGE}&tenant=${a}&by=outcome`));
      expect(report.byOutcome).toBe(true);
      expect(report.rows.map((r) => [r.period.slice(0, 10), r.outcome, r.requests, r.bytesIn])).toEqual([
        ["2025-02-03", "ok", 2, 3_000_000],
        ["2025-02-03", "client_error", 1, 500_000],
        ["2025-02-28", "server_error", 1, 700_000],
      ]);
      expect(report.rows[0]).not.toHaveProperty("succeeded");
      expect(report.totals).toMatchObject({ requests: 4, bytesIn: 4_200_000 });
      await problem(await node().admin("GET", `/usage?by=tenant`), 400, "invalid-body");
    });

    it("answers CSV for format=csv or Accept: text/csv, the same rows as the JSON, quoted per RFC 4180", async () => {
      const report = await json<Report>(await node().admin("GET", `/usage?${RANGE}`));
      const res = await node().admin("GET", `/usage?${RANGE}&format=csv`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
      expect(res.headers.get("content-disposition")).toBe(
        'attachment; filename="imgfleet-usage-2025-02-01-2025-03-01.csv"',
      );
      const text = await res.text();
      expect(text.split("\r\n")[0]).toBe(
        "tenant,period,requests,succeeded,clientErrors,serverErrors,bytesIn,bytesOut,pixelsIn,pixelsOut,cpuMs",
      );
      // The tenant id with a comma and quotes is quoted, its quotes doubled.
      expect(text).toContain('\r\n"odd,""tenant""",2025-02-20T00:00:00.000Z,1,1,0,0,100,25,100,6,2.5\r\n');
      expect(csvObjects(text)).toEqual(report.rows);

      const query = "from=2025-02-01&to=2025-02-28T12:00:00Z&by=outcome";
      const byOutcome = await json<Report>(await node().admin("GET", `/usage?${query}`));
      const negotiated = await fetch(`${node().url}/admin/v1/usage?${query}`, {
        headers: { authorization: `Bearer ${node().adminKey}`, accept: "text/csv" },
      });
      expect(negotiated.headers.get("content-type")).toBe("text/csv; charset=utf-8");
      expect(negotiated.headers.get("content-disposition")).toBe(
        'attachment; filename="imgfleet-usage-2025-02-01-2025-02-28T1200Z.csv"',
      );
      const outcomeText = await negotiated.text();
      expect(outcomeText.split("\r\n")[0]).toBe(
        "tenant,period,outcome,requests,bytesIn,bytesOut,pixelsIn,pixelsOut,cpuMs",
      );
      // The day of the 28th starts before `to`, so it is in; its server error is a row of its own.
      expect(byOutcome.rows.some((r) => r.outcome === "server_error")).toBe(true);
      expect(csvObjects(outcomeText)).toEqual(byOutcome.rows);
      expect(parseCsv(outcomeText)).toHaveLength(byOutcome.rows.length + 1);

      // JSON unless CSV is preferred; format wins over Accept.
      const accept = async (value: string, query = "") =>
        (
          await fetch(`${node().url}/admin/v1/usage?${RANGE}${query}`, {
            headers: { authorization: `Bearer ${node().adminKey}`, accept: value },
          })
        ).headers.get("content-type");
      expect(await accept("application/json, text/csv")).toContain("application/json");
      expect(await accept("*/*")).toContain("application/json");
      expect(await accept("text/csv;q=0.5, application/json")).toContain("application/json");
      expect(await accept("text/csv, */*;q=0.1")).toContain("text/csv");
      expect(await accept("text/csv", "&format=json")).toContain("application/json");
    });

    it("estimates cost per tenant with a grand total, or for one tenant", async () => {
      const summary = await json<Summary>(await node().admin("GET", "/usage/cost?month=2025-02"));
      expect(summary).toMatchObject({ month: "2025-02", currency: "EUR", partial: false });
      expect(summary.tenants.map((t) => t.tenant).sort()).toEqual([a, b, gone, ODD_TENANT].sort());
      const sum = summary.tenants.reduce((s, t) => s + t.total, 0);
      expect(summary.total).toBe(Math.round(sum * 100) / 100);

      const one = await json<Estimate>(await node().admin("GET", `/usage/cost?month=2025-02&tenant=${b}`));
      expect(one).toEqual(summary.tenants.find((t) => t.tenant === b));
      // b: 2 requests, 4.5 MB in, 1.125 MB out, 2 megapixels in; CPU 5 ms.
      expect(one.quantities).toEqual({
        requests: 2,
        gbIn: 0.0045,
        gbOut: 0.001125,
        megapixels: 2,
        cpuHours: 5 / 3_600_000,
      });
      const unrounded = (2 / 1000) * 2 + 0.0045 * 0.5 + 0.001125 * 1 + 2 * 0.01 + (5 / 3_600_000) * 0.05;
      expect(one.total).toBe(Math.round(unrounded * 100) / 100);

      // Default month: the current one, partial.
      const current = await json<Summary>(await node().admin("GET", "/usage/cost"));
      expect(current).toMatchObject({ month: new Date().toISOString().slice(0, 7), partial: true });

      const bad = await problem(await node().admin("GET", "/usage/cost?month=2025-2"), 400, "invalid-body");
      expect(bad.errors?.[0]).toContain("month:");
      await problem(await node().admin("GET", "/usage/cost?month=2999-01"), 400, "invalid-body");
      await problem(await node().admin("GET", "/usage/cost?by=outcome"), 400, "invalid-body");
      await problem(
        await node().admin("GET", "/usage/cost?tenant=ten_00000000000000000000000000"),
        404,
        "not-found",
      );
    });

    it("validates the query as invalid-body problems listing each field", async () => {
      const bad = await problem(
        await node().admin("GET", "/usage?granularity=week&from=yesterday&format=xml&extra=1"),
        400,
        "invalid-body",
      );
      expect(bad.errors).toHaveLength(4);
      for (const field of ["granularity:", "from:", "format:"]) {
        expect(bad.errors?.some((e) => e.startsWith(field))).toBe(true);
      }
      expect(bad.errors?.some((e) => e.includes('"extra"'))).toBe(true);
      const long = await problem(
        await node().admin("GET", "/usage?from=2024-01-01&to=2025-03-01&granularity=day"),
        400,
        "invalid-body",
      );
      expect(long.detail).toContain("daily usage spans at most 400 days");
      // A tenant's key is not an admin key.
      await problem(await node().admin("GET", "/usage", undefined, node().apiKey), 403, "wrong-key-type");
    });
  });
});
