import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { parseDuration, parseInstant } from "../../src/cli/admin/durations.js";
import { renderDetails, renderTable, shortDate } from "../../src/cli/admin/table.js";
import {
  runImgfleet as imgfleet,
  jsonOutput as json,
  ok,
  type CliRun as Run,
  runAgainst,
} from "../helpers/cli.js";
import { solidImage } from "../helpers/images.js";
import { useNode } from "../helpers/node.js";

/**
 * The admin CLI as an operator runs it: a child process from source, talking
 * HTTP to a real node started in this process. Each child costs about a
 * second of tsx start-up, so each test makes the few calls it needs and
 * sets up the rest through the admin API directly.
 */

const node = useNode();

interface TenantJson {
  id: string;
  name: string;
  status: string;
  ratePerSecond: number;
  burst: number;
  maxInFlight: number;
  maxInputBytes: number | null;
  outputFormats: string[] | null;
}

interface KeyJson {
  id: string;
  tenantId: string | null;
  name: string;
  scopes: string[];
  expiresAt: string | null;
  revokedAt: string | null;
  replacedBy: string | null;
}

type IssuedJson = KeyJson & { secret: string };

interface AuditJson {
  id: string;
  action: string;
  target: string | null;
  tenantId: string | null;
}

async function makeTenant(name: string, limits: Partial<TenantJson> = {}): Promise<TenantJson> {
  const res = await node().admin("POST", "/tenants", { name, ...limits });
  expect(res.status).toBe(201);
  return (await res.json()) as TenantJson;
}

/** The status of a small resize with this API key. */
async function resizeWith(secret: string): Promise<number> {
  const res = await fetch(`${node().url}/v1/resize?w=20`, {
    method: "POST",
    body: await solidImage(40, 30),
    headers: { "content-type": "image/jpeg", authorization: `Bearer ${secret}` },
  });
  await res.arrayBuffer();
  return res.status;
}

/** Key changes reach the data plane through the outbox a moment after the write; wait for them. */
async function eventually(check: () => Promise<number>, want: number, ms = 5000): Promise<number> {
  const until = Date.now() + ms;
  for (;;) {
    const got = await check();
    if (got === want || Date.now() > until) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A port nothing listens on: bound, then released. */
async function deadPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("expected a TCP address");
  return address.port;
}

/** The CLI pointed at the test node with its admin key, through the environment as documented. */
const cli = (...args: string[]): Promise<Run> => runAgainst(node(), args);

describe("admin CLI formatting (in process)", () => {
  it("parses durations with units, refuses bare numbers, and resolves --since 24h to a date-time", () => {
    expect(parseDuration("30d")).toBe(30 * 86_400);
    expect(parseDuration("12h")).toBe(43_200);
    expect(parseDuration("15m")).toBe(900);
    expect(parseDuration("3600s")).toBe(3600);
    expect(parseDuration("1h30m")).toBe(5400);
    expect(parseDuration("0")).toBe(0);
    expect(() => parseDuration("60")).toThrow("add a unit: 60s, 60m, 60h or 60d");
    expect(() => parseDuration("2 days")).toThrow("not a duration");
    const now = Date.parse("2026-03-01T12:00:00Z");
    expect(parseInstant("24h", true, now)).toBe("2026-02-28T12:00:00.000Z");
    expect(parseInstant("2026-01-31", true, now)).toBe("2026-01-31T00:00:00.000Z");
    expect(parseInstant("2027-01-31T10:00:00+02:00")).toBe("2027-01-31T08:00:00.000Z");
    // A duration is only a date for --since; for an expiry it must be a date-time.
    expect(() => parseInstant("24h")).toThrow("not a date-time");
  });

  it("aligns columns, prints null as -, shortens dates and neutralises control characters", () => {
    const rows = [
      { id: "a", n: 5, when: "2026-11-22T02:29:00.450Z", tags: ["x", "y"] },
      { id: "longer\u001b[2J", n: 1234, when: null, tags: [] },
    ];
    const text = renderTable(rows, [
      { header: "ID", value: (r) => r.id },
      { header: "N", value: (r) => r.n, align: "right" },
      { header: "WHEN", value: (r) => shortDate(r.when) },
      { header: "TAGS", value: (r) => r.tags },
    ]);
    expect(text).toBe(
      [
        "ID             N  WHEN               TAGS",
        "a              5  2026-11-22 02:29Z  x,y",
        "longer?[2J  1234  -                  -",
        "",
      ].join("\n"),
    );
    expect(
      renderDetails([
        ["id", "t"],
        ["deleted at", null],
      ]),
    ).toBe("id          t\ndeleted at  -\n");
    expect(shortDate("2026-11-22T02:29:07.450Z", true)).toBe("2026-11-22 02:29:07Z");
  });
});

describe("imgfleet tenants", () => {
  it("creates a tenant (table and --json) and lists tenants aligned, or as JSON across pages", async () => {
    const [table, asJson] = await Promise.all([
      cli("tenants", "create", "cli table co", "--rate", "5", "--burst", "10", "--formats", "webp,jpeg"),
      cli("tenants", "create", "cli json co", "--max-in-flight", "3", "--max-input-bytes", "65536", "--json"),
    ]);
    const out = ok(table);
    expect(out).toMatch(/^created tenant ten_\w+ \(cli table co\)\n/);
    expect(out).toMatch(/^rate \(req\/s\) +5$/m);
    expect(out).toMatch(/^burst +10$/m);
    expect(out).toMatch(/^formats +webp,jpeg$/m);
    expect(out).toMatch(/^deleted +-$/m);
    const created = json<TenantJson>(asJson);
    expect(created).toMatchObject({
      name: "cli json co",
      status: "active",
      maxInFlight: 3,
      maxInputBytes: 65536,
    });
    expect(created.id).toMatch(/^ten_/);

    const [list, all] = await Promise.all([
      cli("tenants", "list"),
      cli("tenants", "list", "--limit", "1", "--all", "--json"),
    ]);
    const lines = ok(list).trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +NAME +STATUS +RATE\/S +BURST +IN FLIGHT +MAX BYTES +FORMATS +CREATED$/);
    const row = lines.find((l) => l.includes("cli table co"));
    expect(row).toMatch(
      /ten_\w+ +cli table co +active +5 +10 +\d+ +- +webp,jpeg +\d{4}-\d\d-\d\d \d\d:\d\dZ$/,
    );
    // Aligned: every row's STATUS column starts where the header's does.
    const statusAt = lines[0]?.indexOf("STATUS");
    for (const l of lines.slice(1)) expect(l.slice(statusAt).startsWith("active")).toBe(true);
    // One per page, followed to the end: the helper's tenant and both made here.
    const everyone = json<TenantJson[]>(all);
    expect(everyone.map((t) => t.name)).toEqual(expect.arrayContaining(["cli table co", "cli json co"]));
    expect(everyone.length).toBeGreaterThanOrEqual(3);
    expect(new Set(everyone.map((t) => t.id)).size).toBe(everyone.length);
  });

  it("shows, updates, suspends and resumes a tenant, and the audit trail lists those writes", async () => {
    const tenant = await makeTenant("lifecycle co", { maxInputBytes: 65536 });
    const show = ok(await cli("tenants", "show", tenant.id));
    expect(show).toMatch(new RegExp(`^id +${tenant.id}$`, "m"));
    expect(show).toMatch(/^max input bytes +65536$/m);
    expect(show).toMatch(/^formats +- \(all\)$/m);

    const updated = ok(
      await cli(
        "tenants",
        "update",
        tenant.id,
        "--name",
        "renamed co",
        "--burst",
        "7",
        "--formats",
        "png",
        "--max-input-bytes",
        "none",
      ),
    );
    expect(updated).toContain(`updated tenant ${tenant.id} (renamed co)`);
    expect(updated).toMatch(/^burst +7$/m);
    expect(updated).toMatch(/^formats +png$/m);
    // "none" sends null: back to the node's own limit.
    expect(updated).toMatch(/^max input bytes +- \(the node's limit\)$/m);

    expect(ok(await cli("tenants", "suspend", tenant.id))).toMatch(/^status +suspended$/m);
    expect(json<TenantJson>(await cli("tenants", "resume", tenant.id, "--json"))).toMatchObject({
      id: tenant.id,
      name: "renamed co",
      status: "active",
      burst: 7,
      maxInputBytes: null,
      outputFormats: ["png"],
    });

    const [entries, table] = await Promise.all([
      cli("audit", "--tenant", tenant.id, "--json"),
      cli("audit", "--tenant", tenant.id, "--since", "1h"),
    ]);
    const actions = json<AuditJson[]>(entries).map((e) => e.action);
    // Newest first: resume (recorded today as a plain tenant.update), suspend, update, create.
    expect(actions[0]).toMatch(/^tenant\.(update|resume)$/);
    expect(actions.slice(1)).toEqual(["tenant.suspend", "tenant.update", "tenant.create"]);
    const tableLines = ok(table).trimEnd().split("\n");
    expect(tableLines[0]).toMatch(/^AT +ACTION +TARGET +TENANT +ACTOR +DETAILS$/);
    expect(tableLines).toHaveLength(5);
    expect(tableLines[3]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +tenant\.update +ten_/);
    expect(tableLines[3]).toContain("name=renamed co");
    expect(tableLines[3]).toContain("burst=7");
  });

  it("deletes only with --yes when nobody can be asked, and lists deleted tenants on request", async () => {
    const tenant = await makeTenant("doomed co");
    // execFile gives the child a pipe, not a terminal, for standard input.
    const refused = await cli("tenants", "delete", tenant.id);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`refusing to delete tenant ${tenant.id} without confirmation`);
    expect(refused.stderr).toContain("--yes");
    expect(((await (await node().admin("GET", `/tenants/${tenant.id}`)).json()) as TenantJson).status).toBe(
      "active",
    );

    const deleted = ok(await cli("tenants", "delete", tenant.id, "--yes"));
    expect(deleted).toContain(`deleted tenant ${tenant.id} (doomed co)`);
    expect(deleted).toMatch(/^status +deleted$/m);
    // --quiet: one id a line, for `$(…)` in scripts.
    const gone = ok(await cli("tenants", "list", "--status", "deleted", "--quiet"));
    expect(gone.trimEnd().split("\n")).toContain(tenant.id);
  });

  it("shows the node's validation errors with the flag to fix, exit 1", async () => {
    const run = await cli("tenants", "create", "zero burst co", "--burst", "0");
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("imgfleet: The request body is not valid");
    expect(run.stderr).toMatch(/- burst: .*>=1 \(--burst\)/);
    const list = await node().admin("GET", "/tenants?search=zero%20burst");
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
  });
});

describe("imgfleet keys", () => {
  it("creates a key that resizes, lists it, rotates it with a grace period and revokes it", async () => {
    const tenant = await makeTenant("keyed co");
    const issued = json<IssuedJson>(
      await cli(
        "keys",
        "create",
        tenant.id,
        "--name",
        "web",
        "--scope",
        "resize",
        "--scope",
        "jobs",
        "--expires-in",
        "30d",
        "--json",
      ),
    );
    expect(issued).toMatchObject({
      tenantId: tenant.id,
      name: "web",
      scopes: ["resize", "jobs"],
      revokedAt: null,
    });
    expect(issued.id).toMatch(/^key_/);
    expect(issued.secret).toMatch(/^imf_/);
    const expiresInDays = (Date.parse(issued.expiresAt ?? "") - Date.now()) / 86_400_000;
    expect(expiresInDays).toBeGreaterThan(29.9);
    expect(expiresInDays).toBeLessThanOrEqual(30);
    expect(await eventually(() => resizeWith(issued.secret), 200)).toBe(200);

    const list = ok(await cli("keys", "list", tenant.id));
    expect(list).toMatch(/^ID +NAME +SCOPES +STATUS +CREATED +EXPIRES +REPLACED BY$/m);
    expect(list).toMatch(
      new RegExp(`^${issued.id} +web +resize,jobs +active +\\S+ \\S+ +\\S+ \\S+ +-$`, "m"),
    );

    const rotated = ok(await cli("keys", "rotate", tenant.id, issued.id, "--grace", "1h"));
    const secret = /^secret: (imf_\S+)$/m.exec(rotated)?.[1];
    expect(secret).toBeDefined();
    expect(rotated).toContain("shown once");
    expect(rotated).toMatch(
      new RegExp(`rotated API key ${issued.id} → key_\\w+; ${issued.id} keeps working until`),
    );
    const newId = /^id +(key_\w+)$/m.exec(rotated)?.[1] ?? "";
    expect(await eventually(() => resizeWith(secret ?? ""), 200)).toBe(200);
    // The old key is inside its hour of grace.
    expect(await resizeWith(issued.secret)).toBe(200);

    const revoked = json<KeyJson>(await cli("keys", "revoke", tenant.id, newId, "--json"));
    expect(revoked.id).toBe(newId);
    expect(revoked.revokedAt).not.toBeNull();
    expect(await eventually(() => resizeWith(secret ?? ""), 401)).toBe(401);
  });
});

describe("imgfleet: a tenant by its name", () => {
  it("takes a tenant's unique name wherever it takes its id, and suggests close names with their ids", async () => {
    const acme = await makeTenant("acme");
    await makeTenant("acme labs");
    const gone = await makeTenant("old acme");
    expect((await node().admin("DELETE", `/tenants/${gone.id}`)).status).toBe(200);

    const [created, shown, misspelt, partial, deleted] = await Promise.all([
      cli("keys", "create", "acme", "--scope", "resize"),
      cli("tenants", "show", "ACME", "--json"),
      cli("keys", "create", "acne"),
      cli("keys", "list", "acm"),
      cli("audit", "--tenant", "old acme", "--json"),
    ]);
    // `keys create acme` as the issue typed it: the key is acme's.
    expect(ok(created)).toContain(`created API key key_`);
    expect(created.stdout).toContain(`for tenant acme (${acme.id})`);
    const secret = /^secret: (imf_\S+)$/m.exec(created.stdout)?.[1] ?? "";
    expect(await eventually(() => resizeWith(secret), 200)).toBe(200);
    // Names are unique ignoring case, as the node enforces them.
    expect(json<TenantJson>(shown).id).toBe(acme.id);

    // A typo: the close names, with ids to copy.
    expect(misspelt.code).toBe(1);
    expect(misspelt.stdout).toBe("");
    expect(misspelt.stderr).toContain("no tenant named acne");
    expect(misspelt.stderr).toContain(`did you mean acme (${acme.id})`);
    // Part of a name: the live tenants containing it, never a guess at which one was meant.
    expect(partial.code).toBe(1);
    expect(partial.stderr).toContain(`acme (${acme.id})`);
    expect(partial.stderr).toContain("acme labs (ten_");
    expect(partial.stderr).not.toContain("old acme");
    // A deleted tenant's name still finds its history.
    const entries = json<AuditJson[]>(deleted);
    expect(entries.map((e) => e.action)).toContain("tenant.delete");
    expect(entries.every((e) => e.tenantId === gone.id)).toBe(true);
  });
});

describe("imgfleet admin-keys", () => {
  it("creates an admin key that works, lists it and revokes it", async () => {
    const created = ok(await cli("admin-keys", "create", "--name", "ops", "--expires-in", "12h"));
    const secret = /^secret: (imf_\S+)$/m.exec(created)?.[1] ?? "";
    const id = /^id +(key_\w+)$/m.exec(created)?.[1] ?? "";
    expect(created).toContain(`created admin key ${id}`);
    expect(created).toMatch(/^tenant +- \(admin key\)$/m);
    expect(created).toContain("This secret is shown once");
    const useIt = async () => (await node().admin("GET", "/tenants", undefined, secret)).status;
    expect(await eventually(useIt, 200)).toBe(200);

    const listed = json<KeyJson[]>(await cli("admin-keys", "list", "--json"));
    expect(listed.find((k) => k.id === id)).toMatchObject({ name: "ops", tenantId: null, scopes: ["admin"] });

    const revoked = ok(await cli("admin-keys", "revoke", id));
    expect(revoked).toContain(`revoked admin key ${id}`);
    expect(revoked).toMatch(/^status +revoked$/m);
    expect(await eventually(useIt, 401)).toBe(401);

    // The audit trail has both writes, made with the bootstrap key.
    const audit = (await (await node().admin("GET", `/audit?limit=5`)).json()) as { items: AuditJson[] };
    const mine = audit.items.filter((e) => e.target === id).map((e) => e.action);
    expect(mine).toEqual(["admin-key.revoke", "admin-key.create"]);
  });
});

describe("imgfleet admin commands: errors", () => {
  it("says how to fix an unreachable or silent node (3), a refused key (4) and a missing key (2)", async () => {
    const port = await deadPort();
    // Accepts connections and never answers.
    const silent = createServer(() => {}).listen(0, "127.0.0.1");
    await once(silent, "listening");
    onTestFinished(() => void silent.close());
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const [unreachable, stalled, wrongKey, noKey] = await Promise.all([
      imgfleet(["tenants", "list"], {
        IMGFLEET_URL: `http://127.0.0.1:${port}`,
        IMGFLEET_ADMIN_KEY: node().adminKey,
      }),
      imgfleet(["tenants", "create", "never made", "--url", silentUrl, "--timeout", "300"], {
        IMGFLEET_ADMIN_KEY: node().adminKey,
      }),
      imgfleet(["tenants", "list", "--url", node().url, "--admin-key", node().apiKey]),
      imgfleet(["keys", "list", node().tenant], { IMGFLEET_URL: node().url }),
    ]);

    expect(unreachable.code).toBe(3);
    expect(unreachable.stdout).toBe("");
    expect(unreachable.stderr).toBe(
      `imgfleet: cannot reach http://127.0.0.1:${port}: connection refused — is a node running? set --url or IMGFLEET_URL\n`,
    );

    expect(stalled.code).toBe(3);
    expect(stalled.stderr).toBe(
      `imgfleet: ${silentUrl} did not answer within 300 ms — the node may be overloaded or stuck; check its logs, or raise --timeout\n`,
    );

    // A tenant's key on the admin API: the node's detail, then the hint.
    expect(wrongKey.code).toBe(4);
    expect(wrongKey.stderr).toContain("this is a tenant's API key; the admin API needs an admin key");
    expect(wrongKey.stderr).toContain(
      "hint: the admin key was refused — check --admin-key or IMGFLEET_ADMIN_KEY",
    );

    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("no admin key: set IMGFLEET_ADMIN_KEY (or pass --admin-key)");
  });
});
