import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "./config-error.js";

/** A nested plain object, as read from a file, the environment or flags. */
export type RawConfig = { [key: string]: unknown };

/** Where each leaf value came from, keyed by its dotted path, for error messages. */
export type Origins = Map<string, string>;

export const ENV_PREFIX = "IMGFLEET_";
/** Not a config key: names the config file. */
const ENV_CONFIG_FILE = "IMGFLEET_CONFIG";

/**
 * The variables the imgfleet CLI reads to reach a node. They share the
 * prefix but are not configuration: the README has users export them, and
 * `imgfleet start` in that same shell must still start.
 */
export const CLI_ENV = { url: "IMGFLEET_URL", adminKey: "IMGFLEET_ADMIN_KEY" } as const;
export const CLI_ENV_VARIABLES: readonly string[] = Object.values(CLI_ENV);

/** IMGFLEET_* variables that are not configuration keys. */
function isConfigVariable(name: string): boolean {
  return name.startsWith(ENV_PREFIX) && name !== ENV_CONFIG_FILE && !CLI_ENV_VARIABLES.includes(name);
}

export function readConfigFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ConfigError([`config file ${path}: cannot be read (${(cause as Error).message})`]);
  }
  try {
    const parsed: unknown = extname(path) === ".json" ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new Error("the top level must be a mapping of keys to values");
    }
    return parsed as RawConfig;
  } catch (cause) {
    throw new ConfigError([
      `config file ${path}: not valid ${extname(path) === ".json" ? "JSON" : "YAML"}: ${(cause as Error).message}`,
    ]);
  }
}

export function configFileFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  return env[ENV_CONFIG_FILE] || undefined;
}

/** `MAX_INPUT_BYTES` → `maxInputBytes`. */
function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Env values are JSON when they parse as a number, boolean or array; otherwise plain strings. */
function envValue(raw: string): unknown {
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v === "number" || typeof v === "boolean" || Array.isArray(v)) return v;
  } catch {
    // a plain string
  }
  return raw;
}

/** `IMGFLEET_LIMITS__MAX_INPUT_BYTES=1000` → `{ limits: { maxInputBytes: 1000 } }`. */
export function fromEnv(env: NodeJS.ProcessEnv, origins: Origins): RawConfig {
  const out: RawConfig = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!isConfigVariable(name) || raw === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).split("__").map(camel);
    setPath(out, path, envValue(raw));
    origins.set(path.join("."), `env ${name}`);
  }
  return out;
}

export function setPath(target: RawConfig, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as RawConfig;
  }
  const last = path.at(-1);
  if (last !== undefined) node[last] = value;
}

/** Later sources win, key by key; arrays are replaced, not merged. */
export function mergeDeep(...sources: RawConfig[]): RawConfig {
  const out: RawConfig = {};
  for (const source of sources) {
    for (const [key, value] of Object.entries(source)) {
      const prev = out[key];
      out[key] = isPlainObject(value) && isPlainObject(prev) ? mergeDeep(prev, value) : value;
    }
  }
  return out;
}

function isPlainObject(v: unknown): v is RawConfig {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function recordOrigins(raw: RawConfig, origin: string, origins: Origins, prefix = ""): void {
  for (const [key, value] of Object.entries(raw)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isPlainObject(value)) recordOrigins(value, origin, origins, path);
    else origins.set(path, origin);
  }
}
