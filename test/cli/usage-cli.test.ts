import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { si } from "../../src/cli/admin/usage-commands.js";
import { groupRecords, type MeterRecord } from "../../src/usage/model.js";
import { rollupStore } from "../../src/usage/rollup-store.js";
import { ok, type CliRun as Run, runAgainst } from "../helpers/cli.js";
import { useNode } from "../helpers/node.js";

/**
 * `imgfleet usage` and `imgfleet usage cost` as an operator runs them: a
 * child process from source against a real node in this process, whose
 * rollups are written through the aggregator's write path.
 */

const node = useNode();

function record(tenant: string, at: string, status: number, inBytes: number, inPixels = 0): MeterRecord {
  return {
    id: randomUUID(),
    tenant,
    key: null,
    at: Date.parse(at),
    op: "resize",
    status,
    inBytes,
    outBytes: Math.floor(inBytes / 2),
    inPixels,
    outPixels: Math.floor(inPixels / 4),
    inFormat: "png",
    outFormat: "avif",
    queueMs: 1,
    processMs: 5,
    cpuMs: 1500,
  };
}

const RANGE = ["--from", "2025-05-01", "--to", "2025-06-01"];

const cli = (...args: string[]): Promise<Run> => runAgainst(node(), args);

describe("imgfleet usage", () => {
  let a: string;
  let b: string;

  beforeAll(async () => {
    a = node().tenant;
    const res = await node().admin("POST", "/tenants", { name: "usage cli b" });
    b = ((await res.json()) as { id: string }).id;
    const records = [
      record(a, "2025-05-02T09:00:00Z", 200, 2_000_000, 12_000_000),
      record(a, "2025-05-02T09:30:00Z", 404, 100_000),
      record(a, "2025-05-31T23:00:00Z", 200, 500_000, 1_000_000),
      record(b, "2025-05-02T10:00:00Z", 200, 1_000_000_000, 50_000_000),
      record(b, "2025-06-01T00:00:00Z", 200, 7),
    ];
    await rollupStore.apply(node().node.adapters.db, {
      id: randomUUID(),
      node: "cli-test",
      sealedAt: Date.now(),
      groups: groupRecords(records),
      records,
    });
  });

  it("prints the report as JSON, as CSV, and as a table with a totals line", async () => {
    const [asJson, asCsv, table, byOutcome] = await Promise.all([
      cli("usage", ...RANGE, "--json"),
      cli("usage", ...RANGE, "--tenant", a, "--granularity", "hour", "--csv"),
      cli("usage", ...RANGE),
      // A tenant by its name, as well as by its id.
      cli("usage", ...RANGE, "--tenant", "test tenant", "--by-outcome"),
    ]);

    const api = await (await node().admin("GET", "/usage?from=2025-05-01&to=2025-06-01")).json();
    const report = JSON.parse(ok(asJson)) as {
      rows: Array<{ tenant: string }>;
      totals: { requests: number };
    };
    expect(report).toEqual(api);
    expect(report.rows).toHaveLength(3);
    expect(report.totals.requests).toBe(4);

    const csv = ok(asCsv);
    const apiCsv = await (
      await fetch(
        `${node().url}/admin/v1/usage?from=2025-05-01&to=2025-06-01&tenant=${a}&granularity=hour&format=csv`,
        { headers: { authorization: `Bearer ${node().adminKey}` } },
      )
    ).text();
    expect(csv).toBe(apiCsv);
    const lines = csv.split("\r\n");
    expect(lines[0]).toBe(
      "tenant,period,requests,succeeded,clientErrors,serverErrors,bytesIn,bytesOut,pixelsIn,pixelsOut,cpuMs",
    );
    expect(lines[1]).toBe(`${a},2025-05-02T09:00:00.000Z,2,1,1,0,2000000,1000000,12000000,3000000,1500`);
    expect(lines).toHaveLength(4); // header, two hours, and the empty string after the last CRLF

    const out = ok(table).trimEnd().split("\n");
    expect(out[0]).toBe("daily usage of every tenant, 2025-05-01 00:00Z to 2025-06-01 00:00Z");
    expect(out[1]).toMatch(
      /^PERIOD +TENANT +NAME +REQUESTS +OK +4XX +5XX +BYTES IN +BYTES OUT +PIXELS IN +PIXELS OUT +CPU$/,
    );
    const rowOf = (tenant: string, day: string) => out.find((l) => l.startsWith(day) && l.includes(tenant));
    // Each tenant's name beside its id.
    expect(rowOf(a, "2025-05-02")).toContain(`${a}  test tenant `);
    expect(rowOf(b, "2025-05-02")).toContain(`${b}  usage cli b `);
    expect(rowOf(a, "2025-05-02")).toMatch(/ +2 +1 +1 +0 +2.00 MB +1.00 MB +12.0 Mpx +3.00 Mpx +1.50 s$/);
    expect(rowOf(b, "2025-05-02")).toMatch(/ +1 +1 +0 +0 +1.00 GB +500 MB +50.0 Mpx +12.5 Mpx +1.50 s$/);
    expect(out.at(-2)).toMatch(
      /^total +2 tenants +- +4 +3 +1 +0 +1.00 GB +501 MB +63.0 Mpx +15.8 Mpx +4.50 s$/,
    );
    expect(out.at(-1)).toBe("bytes, pixels and CPU count successful requests only (what is billed)");
    // Aligned: every row's REQUESTS ends where the header's does.
    const end = (out[1]?.indexOf("REQUESTS") ?? 0) + "REQUESTS".length;
    for (const l of out.slice(2, -1)) expect(l.slice(0, end)).toMatch(/\d$/);

    const outcomes = ok(byOutcome).trimEnd().split("\n");
    expect(outcomes[0]).toBe(`daily usage of test tenant (${a}), 2025-05-01 00:00Z to 2025-06-01 00:00Z`);
    expect(outcomes[1]).toMatch(/^PERIOD +TENANT +NAME +OUTCOME +REQUESTS +BYTES IN/);
    expect(outcomes.slice(2).map((l) => l.split(/ {2,}/).slice(0, 5))).toEqual([
      ["2025-05-02", a, "test tenant", "ok", "1"],
      ["2025-05-02", a, "test tenant", "client_error", "1"],
      ["2025-05-31", a, "test tenant", "ok", "1"],
      ["total", "1 tenant", "-", "-", "3"],
    ]);
  });

  it("estimates cost for every tenant or one, as a table or JSON", async () => {
    const [all, one, asJson] = await Promise.all([
      cli("usage", "cost", "--month", "2025-05"),
      cli("usage", "cost", "--month", "2025-05", "--tenant", "Usage CLI b"),
      cli("usage", "cost", "--month", "2025-05", "--json"),
    ]);
    const api = (await (await node().admin("GET", "/usage/cost?month=2025-05")).json()) as {
      total: number;
      currency: string;
      tenants: Array<{ tenant: string; total: number }>;
    };
    expect(JSON.parse(ok(asJson))).toEqual(api);

    const table = ok(all).trimEnd().split("\n");
    expect(table[0]).toBe(`cost estimates for 2025-05, in ${api.currency}`);
    expect(table[1]).toMatch(/^TENANT +NAME +REQUESTS +GB IN +GB OUT +MEGAPIXELS +CPU HOURS +TOTAL$/);
    expect(table.find((l) => l.startsWith(b))).toMatch(new RegExp(`^${b} +usage cli b +1 `));
    expect(table).toHaveLength(2 + api.tenants.length + 1);
    expect(table.at(-1)).toMatch(
      new RegExp(`^total +- +3 +1.0025 +0.50125 +63 +0.00125 +${api.total.toFixed(2)}$`),
    );

    const details = ok(one);
    expect(details).toContain(`cost estimate for usage cli b (${b}), 2025-05\n`);
    expect(details).toMatch(/^ITEM +QUANTITY +UNIT +UNIT PRICE +AMOUNT$/m);
    // The node's default plan: 0.02 per GB in, so 1 GB costs 0.0200.
    expect(details).toMatch(/^gbIn +1 +GB +0.02 +0.0200$/m);
    expect(details).toMatch(/^requests +0.001 +1000 requests +0.5 +0.0005$/m);
    const b5 = api.tenants.find((t) => t.tenant === b);
    expect(details).toMatch(new RegExp(`^total ${b5?.total.toFixed(2)} ${api.currency}$`, "m"));
  });

  it("refuses a malformed --month before asking the node (exit 2), and shows the node's refusals (exit 1)", async () => {
    const [badMonth, tooLong, unknownTenant, unknownName] = await Promise.all([
      cli("usage", "cost", "--month", "2025-13"),
      cli("usage", "--granularity", "hour", "--from", "2025-01-01", "--to", "2025-03-01"),
      cli("usage", "cost", "--tenant", "ten_00000000000000000000000000"),
      cli("usage", "cost", "--tenant", "usage cli"),
    ]);
    expect(badMonth.code).toBe(2);
    expect(badMonth.stdout).toBe("");
    expect(badMonth.stderr).toContain("--month");
    expect(badMonth.stderr).toContain("expected a month such as 2026-03 (YYYY-MM, UTC)");

    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain("imgfleet: The request body is not valid");
    expect(tooLong.stderr).toMatch(/- from: hourly usage spans at most 31 days.* \(--from\)/);

    expect(unknownTenant.code).toBe(1);
    expect(unknownTenant.stderr).toContain("no tenant ten_00000000000000000000000000");

    // Part of a name is no name: the tenants that contain it, with their ids.
    expect(unknownName.code).toBe(1);
    expect(unknownName.stderr).toContain("no tenant named 'usage cli'");
    expect(unknownName.stderr).toContain(`did you mean usage cli b (${b})?`);
  });

  it("formats sizes with three significant digits and decimal prefixes", () => {
    expect(si(0, "B")).toBe("0 B");
    expect(si(999, "B")).toBe("999 B");
    expect(si(1000, "B")).toBe("1.00 kB");
    expect(si(1_234_567, "B")).toBe("1.23 MB");
    expect(si(999_600, "px")).toBe("1.00 Mpx");
  });
});
