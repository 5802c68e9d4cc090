import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";
import { envName, keyPaths } from "../../src/config/key-names.js";
import { loadConfig } from "../../src/config/load.js";
import { REDACTED, redact } from "../../src/config/redact.js";
import { ConfigSchema } from "../../src/config/schema.js";
import { CLI_ENV_VARIABLES, fromEnv } from "../../src/config/sources.js";

const dir = mkdtempSync(join(tmpdir(), "imgfleet-config-"));
const CLI_DIR = join(import.meta.dirname, "../../src/cli");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes a config file with the given extension and returns its path. */
function configFile(ext: "yaml" | "yml" | "json", text: string): string {
  const path = join(dir, `config-${++fileCount}.${ext}`);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError loadConfig throws; fails the test when it returns. */
function configError(sources: Parameters<typeof loadConfig>[0]): ConfigError {
  try {
    loadConfig(sources);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("loadConfig accepted an invalid configuration");
}

describe("loadConfig: layers", () => {
  it("lets env override the file and overrides (flags) override env, key by key", () => {
    const file = configFile(
      "yaml",
      "limits:\n  maxInputBytes: 2048\n  maxFrames: 7\nserver:\n  port: 1111\n",
    );
    const fileOnly = loadConfig({ file, env: {} });
    expect(fileOnly.limits.maxInputBytes).toBe(2048);
    expect(fileOnly.server.port).toBe(1111);

    const withEnv = loadConfig({ file, env: { IMGFLEET_LIMITS__MAX_INPUT_BYTES: "4096" } });
    expect(withEnv.limits.maxInputBytes).toBe(4096);
    // A sibling from the file survives: layers merge per key, not per section.
    expect(withEnv.limits.maxFrames).toBe(7);

    const withFlags = loadConfig({
      file,
      env: { IMGFLEET_LIMITS__MAX_INPUT_BYTES: "4096", IMGFLEET_SERVER__PORT: "2222" },
      overrides: { limits: { maxInputBytes: 8192 } },
    });
    expect(withFlags.limits.maxInputBytes).toBe(8192);
    expect(withFlags.limits.maxFrames).toBe(7);
    expect(withFlags.server.port).toBe(2222);
  });

  it("reads YAML (.yaml and .yml) and JSON files", () => {
    const yaml = configFile("yaml", "server:\n  host: 0.0.0.0\n  port: 9100\nlog:\n  level: warn\n");
    const yml = configFile("yml", "dataDir: /var/lib/imgfleet\n");
    const json = configFile(
      "json",
      JSON.stringify({ queue: { capacity: 5 }, limits: { inputFormats: ["png"] } }),
    );
    const a = loadConfig({ file: yaml, env: {} });
    expect([a.server.host, a.server.port, a.log.level]).toEqual(["0.0.0.0", 9100, "warn"]);
    expect(loadConfig({ file: yml, env: {} }).dataDir).toBe("/var/lib/imgfleet");
    const c = loadConfig({ file: json, env: {} });
    expect(c.queue.capacity).toBe(5);
    expect(c.limits.inputFormats).toEqual(["png"]);
  });

  it("takes the file from IMGFLEET_CONFIG when none is given, and an explicit file wins", () => {
    const fromEnv = configFile("yaml", "server:\n  port: 3333\n");
    const explicit = configFile("yaml", "server:\n  port: 4444\n");
    expect(loadConfig({ env: { IMGFLEET_CONFIG: fromEnv } }).server.port).toBe(3333);
    expect(loadConfig({ file: explicit, env: { IMGFLEET_CONFIG: fromEnv } }).server.port).toBe(4444);
  });

  it("an empty file is an empty layer: every default applies", () => {
    const empty = configFile("yaml", "");
    expect(loadConfig({ file: empty, env: {} })).toEqual(loadConfig({ env: {} }));
  });

  it("fills every default when nothing is configured", () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({
      dataDir: "./data",
      server: { host: "127.0.0.1", port: 8080, shutdownGraceMs: 10_000 },
      limits: {
        maxInputBytes: 25 * 1024 * 1024,
        maxInputPixels: 50_000_000,
        maxOutputDimension: 8192,
        maxFrames: 100,
        processingTimeoutMs: 10_000,
        inputFormats: ["jpeg", "png", "webp", "avif", "gif", "tiff", "heif"],
      },
      queue: { capacity: 64, deadlineMs: 15_000, maxAttempts: 2 },
      staging: { maxBytes: 256 * 1024 * 1024 },
      workers: { maxRssMb: 320, jemalloc: "auto" },
      log: { level: "info" },
    });
    expect(config.limits.inputFormats).not.toContain("svg");
    expect(Number.isInteger(config.workers.count) && config.workers.count >= 1).toBe(true);
  });

  it("ignores process.env-like variables without the IMGFLEET_ prefix", () => {
    const config = loadConfig({ env: { PORT: "1", SERVER__PORT: "2", imgfleet_server__port: "3" } });
    expect(config.server.port).toBe(8080);
  });
});

describe("loadConfig: environment values", () => {
  it("parses numbers and booleans-as-JSON, and leaves plain words as strings", () => {
    const config = loadConfig({
      env: {
        IMGFLEET_SERVER__PORT: "9001",
        IMGFLEET_SERVER__HOST: "0.0.0.0",
        IMGFLEET_QUEUE__DEADLINE_MS: "20000",
        IMGFLEET_LOG__LEVEL: "debug",
        IMGFLEET_DATA_DIR: "/srv/data",
        IMGFLEET_WORKERS__JEMALLOC: "off",
      },
    });
    expect(config.server.port).toBe(9001);
    expect(config.server.host).toBe("0.0.0.0");
    expect(config.queue.deadlineMs).toBe(20_000);
    expect(config.log.level).toBe("debug");
    expect(config.dataDir).toBe("/srv/data");
    expect(config.workers.jemalloc).toBe("off");
  });

  it("reads limits.inputFormats as a comma list, with spaces and empty items ignored", () => {
    const config = loadConfig({ env: { IMGFLEET_LIMITS__INPUT_FORMATS: "jpeg, png,,svg " } });
    expect(config.limits.inputFormats).toEqual(["jpeg", "png", "svg"]);
  });

  it("reads limits.inputFormats as a JSON array", () => {
    const config = loadConfig({ env: { IMGFLEET_LIMITS__INPUT_FORMATS: '["webp","gif"]' } });
    expect(config.limits.inputFormats).toEqual(["webp", "gif"]);
  });

  it("rejects an empty format list and an unknown format in the list", () => {
    const empty = configError({ env: { IMGFLEET_LIMITS__INPUT_FORMATS: " , " } });
    expect(empty.issues.join("\n")).toMatch(/limits\.inputFormats.*must name at least one format/);
    const unknown = configError({ env: { IMGFLEET_LIMITS__INPUT_FORMATS: "jpeg,bmp" } });
    expect(unknown.issues).toHaveLength(1);
    expect(unknown.issues[0]).toMatch(
      /^limits\.inputFormats\.1: got "bmp" \(from env IMGFLEET_LIMITS__INPUT_FORMATS\): .*"jpeg"/,
    );
  });

  it("names the list, the item and the file for a bad item of a list in a file", () => {
    const file = configFile("yaml", "limits:\n  inputFormats: [png, pdf]\n");
    const error = configError({ file, env: {} });
    expect(error.issues).toEqual([
      expect.stringContaining(`limits.inputFormats.1: got "pdf" (from file ${file})`),
    ]);
  });
});

describe("loadConfig: unknown keys", () => {
  it("names an unknown key from a file and the file it came from", () => {
    const file = configFile("yaml", "server:\n  prot: 80\n");
    const error = configError({ file, env: {} });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toContain("server.prot: unknown key");
    expect(error.issues[0]).toContain(`file ${file}`);
  });

  it("names an unknown key from the environment with the variable's name", () => {
    const error = configError({ env: { IMGFLEET_SERVER__PROT: "80" } });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toContain("server.prot: unknown key");
    expect(error.issues[0]).toContain("env IMGFLEET_SERVER__PROT");
    expect(error.message).toContain("env IMGFLEET_SERVER__PROT");
  });

  it("names an unknown top-level key from overrides as coming from a flag", () => {
    const error = configError({ env: {}, overrides: { colour: "blue" } });
    expect(error.issues).toEqual([expect.stringMatching(/^colour: unknown key \(from flag\)/)]);
  });

  it("names where an unknown section came from, not only unknown leaves", () => {
    const file = configFile("yaml", "sever:\n  port: 80\n");
    const fromFile = configError({ file, env: {} });
    expect(fromFile.issues).toHaveLength(1);
    expect(fromFile.issues[0]).toContain("sever: unknown key");
    expect(fromFile.issues[0]).toContain(`file ${file}`);
    const fromEnv = configError({ env: { IMGFLEET_SEVER__PORT: "80" } });
    expect(fromEnv.issues[0]).toContain("sever: unknown key");
    expect(fromEnv.issues[0]).toContain("env IMGFLEET_SEVER__PORT");
  });
});

describe("loadConfig: the CLI's variables and misspelt ones", () => {
  it("takes the README's two CLI variables as no configuration at all", () => {
    const env = { IMGFLEET_URL: "http://127.0.0.1:8080", IMGFLEET_ADMIN_KEY: "imf_x_y" };
    expect(loadConfig({ env })).toEqual(loadConfig({ env: {} }));
    // ...and with real configuration beside them, that still applies.
    expect(loadConfig({ env: { ...env, IMGFLEET_SERVER__PORT: "9001" } }).server.port).toBe(9001);
  });

  it("names every IMGFLEET_* variable the CLI's sources mention as a config key or a CLI variable", () => {
    // A new variable for the CLI must be listed in CLI_ENV, or `imgfleet start` refuses to start beside it.
    const configNames = new Set(keyPaths(ConfigSchema).map(envName));
    const cliSources = readdirSync(CLI_DIR, { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(".ts"))
      .map((file) => readFileSync(join(CLI_DIR, file), "utf8"));
    const mentioned = new Set(cliSources.flatMap((text) => text.match(/IMGFLEET_[A-Z0-9_]*[A-Z0-9]/g) ?? []));
    const unknown = [...mentioned].filter(
      (name) => name !== "IMGFLEET_CONFIG" && !configNames.has(name) && !CLI_ENV_VARIABLES.includes(name),
    );
    expect(unknown).toEqual([]);
  });

  it("reads every key of the schema back from the variable named for it", () => {
    const paths = keyPaths(ConfigSchema);
    expect(paths.length).toBeGreaterThan(60);
    for (const path of paths) {
      const origins = new Map<string, string>();
      fromEnv({ [envName(path)]: "x" }, origins);
      expect([...origins.keys()]).toEqual([path.join(".")]);
    }
  });

  it("suggests the variable a misspelt one was meant to be, and how to get rid of it", () => {
    const single = configError({ env: { IMGFLEET_SERVER_PORT: "9000" } });
    expect(single.issues).toHaveLength(1);
    expect(single.issues[0]).toContain("env IMGFLEET_SERVER_PORT");
    expect(single.issues[0]).toContain("did you mean IMGFLEET_SERVER__PORT?");
    expect(single.issues[0]).toContain("unset IMGFLEET_SERVER_PORT");

    const section = configError({ env: { IMGFLEET_LIMITS__MAX_INPUT_BYTE: "4096" } });
    expect(section.issues[0]).toContain("did you mean IMGFLEET_LIMITS__MAX_INPUT_BYTES?");

    const cli = configError({ env: { IMGFLEET_ADMIN_KY: "imf_x" } });
    expect(cli.issues[0]).toContain("did you mean IMGFLEET_ADMIN_KEY? That one is read by the imgfleet CLI");

    // Nothing close: no guess, but still what to do.
    const far = configError({ env: { IMGFLEET_FOO: "1" } });
    expect(far.issues[0]).not.toContain("did you mean");
    expect(far.issues[0]).toContain("unset IMGFLEET_FOO");
  });

  it("suggests the key a misspelt one in a file or flag was meant to be", () => {
    const file = configFile("yaml", "limits:\n  maxFrame: 3\nsever:\n  port: 80\n");
    const error = configError({ file, env: {} });
    expect(error.issues).toEqual([
      expect.stringContaining("limits.maxFrame: unknown key"),
      expect.stringContaining("sever: unknown key"),
    ]);
    expect(error.issues[0]).toContain("did you mean limits.maxFrames?");
    expect(error.issues[1]).toContain("did you mean server?");
  });
});

describe("loadConfig: invalid values", () => {
  it("names the key, the value, the flag origin and the rule for server.port 'abc'", () => {
    const error = configError({ env: {}, overrides: { server: { port: "abc" } } });
    expect(error.issues).toHaveLength(1);
    const [issue] = error.issues;
    expect(issue).toContain("server.port");
    expect(issue).toContain('got "abc"');
    expect(issue).toContain("(from flag)");
    expect(issue).toMatch(/expected number/i);
  });

  it("names the rule for an out-of-range number and a non-integer", () => {
    const error = configError({ env: { IMGFLEET_SERVER__PORT: "70000", IMGFLEET_QUEUE__CAPACITY: "1.5" } });
    const text = error.issues.join("\n");
    expect(text).toMatch(/server\.port: got 70000 \(from env IMGFLEET_SERVER__PORT\): .*(<=|65535)/);
    expect(text).toMatch(/queue\.capacity: got 1\.5 \(from env IMGFLEET_QUEUE__CAPACITY\): .*int/i);
  });

  it("names the allowed values of an enum", () => {
    const file = configFile("json", JSON.stringify({ log: { level: "loud" } }));
    const error = configError({ file, env: {} });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toContain('log.level: got "loud"');
    expect(error.issues[0]).toContain(`file ${file}`);
    expect(error.issues[0]).toContain('"debug"');
  });

  it("reports every issue from every layer in one ConfigError", () => {
    const file = configFile("yaml", "queue:\n  capacity: 0\nextra: 1\n");
    const error = configError({
      file,
      env: { IMGFLEET_LIMITS__MAX_FRAMES: "-3", IMGFLEET_SERVER__PROT: "1" },
      overrides: { server: { port: "abc" } },
    });
    expect(error.issues).toHaveLength(5);
    const text = error.message;
    expect(text).toContain("queue.capacity: got 0");
    expect(text).toContain("extra: unknown key");
    expect(text).toContain("limits.maxFrames: got -3 (from env IMGFLEET_LIMITS__MAX_FRAMES)");
    expect(text).toContain("server.prot: unknown key (from env IMGFLEET_SERVER__PROT)");
    expect(text).toContain('server.port: got "abc" (from flag)');
    // One line per issue in the message, too.
    expect(text.split("\n").filter((l) => l.startsWith("  - "))).toHaveLength(5);
  });

  it("reports the origin of the winning layer when a later layer sets a bad value", () => {
    const file = configFile("yaml", "server:\n  port: 8000\n");
    const error = configError({ file, env: { IMGFLEET_SERVER__PORT: "-1" } });
    expect(error.issues).toEqual([
      expect.stringContaining("server.port: got -1 (from env IMGFLEET_SERVER__PORT)"),
    ]);
  });
});

describe("loadConfig: the result is frozen", () => {
  it("freezes the config, every section and every array", () => {
    const config = loadConfig({ env: {} });
    expect(Object.isFrozen(config)).toBe(true);
    for (const section of [
      config.server,
      config.limits,
      config.queue,
      config.staging,
      config.workers,
      config.log,
    ]) {
      expect(Object.isFrozen(section)).toBe(true);
    }
    expect(Object.isFrozen(config.limits.inputFormats)).toBe(true);
  });

  it("throws on assignment in strict mode and keeps the value", () => {
    const config = loadConfig({ env: {} });
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.limits.inputFormats as string[]).push("svg");
    }).toThrow(TypeError);
    expect(() => {
      (config as { dataDir: string }).dataDir = "/tmp";
    }).toThrow(TypeError);
    expect(config.server.port).toBe(8080);
    expect(config.limits.inputFormats).not.toContain("svg");
  });

  it("does not freeze or share the caller's overrides", () => {
    const overrides = { server: { port: 9000 }, limits: { inputFormats: ["png"] } };
    const config = loadConfig({ env: {}, overrides });
    expect(Object.isFrozen(overrides.server)).toBe(false);
    expect(Object.isFrozen(overrides.limits.inputFormats)).toBe(false);
    overrides.limits.inputFormats.push("gif");
    expect(config.limits.inputFormats).toEqual(["png"]);
  });

  it("two loads do not share the default arrays", () => {
    const a = loadConfig({ env: {} });
    const b = loadConfig({ env: {} });
    expect(a.limits.inputFormats).toEqual(b.limits.inputFormats);
    expect(loadConfig({ env: { IMGFLEET_LIMITS__INPUT_FORMATS: "png" } }).limits.inputFormats).toEqual([
      "png",
    ]);
  });
});

describe("loadConfig: unreadable files", () => {
  it("a missing file names the path and says it cannot be read", () => {
    const path = join(dir, "nope.yaml");
    const error = configError({ file: path, env: {} });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toContain(`config file ${path}: cannot be read`);
    expect(error.issues[0]).toContain("ENOENT");
  });

  it("invalid YAML names the path and the parser's complaint", () => {
    const path = configFile("yaml", "server:\n  port: [1, 2\n");
    const error = configError({ file: path, env: {} });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toContain(`config file ${path}: not valid YAML`);
  });

  it("invalid JSON names the path and says JSON", () => {
    const path = configFile("json", '{ "server": { "port": 80, } ');
    const error = configError({ file: path, env: {} });
    expect(error.issues).toEqual([expect.stringContaining(`config file ${path}: not valid JSON`)]);
  });

  it("a file whose top level is not a mapping is refused", () => {
    const list = configFile("yaml", "- a\n- b\n");
    expect(configError({ file: list, env: {} }).issues[0]).toContain("the top level must be a mapping");
    const scalar = configFile("json", "42");
    expect(configError({ file: scalar, env: {} }).issues[0]).toContain("the top level must be a mapping");
  });
});

describe("redact", () => {
  it("hides values under secret-looking keys and keeps the rest", () => {
    const input = {
      server: { host: "0.0.0.0", port: 8080 },
      auth: { secret: "s3cr3t", password: "hunter2", apiKey: "ak-123", api_key: "ak-456", token: "t" },
      store: { privateKey: "-----BEGIN", clientSecretValue: "x", user: "alice" },
      count: 3,
      enabled: true,
    };
    expect(redact(input)).toEqual({
      server: { host: "0.0.0.0", port: 8080 },
      auth: { secret: REDACTED, password: REDACTED, apiKey: REDACTED, api_key: REDACTED, token: REDACTED },
      store: { privateKey: REDACTED, clientSecretValue: REDACTED, user: "alice" },
      count: 3,
      enabled: true,
    });
  });

  it("hides whole arrays and objects under a secret key, and numbers too", () => {
    expect(redact({ tokens: ["a", "b"], secrets: { db: "x" }, pin: 1, password: 1234 })).toEqual({
      tokens: REDACTED,
      secrets: REDACTED,
      pin: 1,
      password: REDACTED,
    });
  });

  it("does not mistake keys that merely contain 'key' for secrets", () => {
    expect(redact({ keyboard: "qwerty", monkey: "george", keys: 2 })).toEqual({
      keyboard: "qwerty",
      monkey: "george",
      keys: 2,
    });
  });

  it("strips passwords from URLs anywhere, keeping user, host and path", () => {
    const out = redact({
      database: { url: "postgres://app:pa55word@db.internal:5432/imgfleet" },
      servers: ["nats://svc:tok@nats-1:4222", "nats://nats-2:4222"],
      note: "mirror at https://user:pw@example.com/x and https://example.com/y",
    });
    expect(out).toEqual({
      database: { url: `postgres://app:${REDACTED}@db.internal:5432/imgfleet` },
      servers: [`nats://svc:${REDACTED}@nats-1:4222`, "nats://nats-2:4222"],
      note: `mirror at https://user:${REDACTED}@example.com/x and https://example.com/y`,
    });
    expect(JSON.stringify(out)).not.toMatch(/pa55word|tok@|pw@/);
  });

  it("strips a password from a URL with no user name (redis://:password@host)", () => {
    const out = redact({ cache: "redis://:hunter2@cache:6379/0" });
    expect(JSON.stringify(out)).not.toContain("hunter2");
    expect(out).toEqual({ cache: `redis://:${REDACTED}@cache:6379/0` });
  });

  it("leaves empty secrets, host:port strings and the whole config alone", () => {
    expect(redact({ password: "", addr: "localhost:8080" })).toEqual({
      password: "",
      addr: "localhost:8080",
    });
    const config = loadConfig({ env: {} });
    expect(redact(config)).toEqual(config);
  });
});
