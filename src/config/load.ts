import type { z } from "zod";
import { ConfigError } from "./config-error.js";
import { envHint, keyHint } from "./key-names.js";
import { type Config, ConfigSchema } from "./schema.js";
import {
  configFileFromEnv,
  fromEnv,
  mergeDeep,
  type Origins,
  type RawConfig,
  readConfigFile,
  recordOrigins,
} from "./sources.js";

export interface ConfigSources {
  /** Path of a YAML or JSON file; falls back to IMGFLEET_CONFIG. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Already nested, e.g. `{ server: { port: 9000 } }`, from CLI flags or code. */
  overrides?: RawConfig;
}

/**
 * Reads file, then environment, then flags (later wins), validates once with
 * the one schema, and returns a deep-frozen config. Throws ConfigError
 * listing every invalid key, its value, where it came from and the rule.
 */
export function loadConfig(sources: ConfigSources = {}): Readonly<Config> {
  const env = sources.env ?? process.env;
  const origins: Origins = new Map();
  const file = sources.file ?? configFileFromEnv(env);
  const layers: RawConfig[] = [];
  if (file) {
    const fromFile = readConfigFile(file);
    recordOrigins(fromFile, `file ${file}`, origins);
    layers.push(fromFile);
  }
  layers.push(fromEnv(env, origins));
  if (sources.overrides) {
    recordOrigins(sources.overrides, "flag", origins);
    layers.push(sources.overrides);
  }
  const merged = structuredClone(mergeDeep(...layers));
  const result = ConfigSchema.safeParse(merged, { reportInput: true });
  if (!result.success) throw new ConfigError(describeIssues(result.error, merged, origins));
  return deepFreeze(result.data);
}

function describeIssues(error: z.ZodError, input: RawConfig, origins: Origins): string[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => unknownKey([...issue.path, key].join("."), origins));
    }
    const path = issue.path.join(".");
    // The raw value as written; zod's own input for items of a comma-list string.
    const raw = valueAt(input, issue.path);
    const value = raw === undefined && "input" in issue ? issue.input : raw;
    return [`${path || "(root)"}: got ${JSON.stringify(value)}${from(origins, path)}: ${issue.message}`];
  });
}

/** An unknown key, where it came from, and the name it was probably meant to be. */
function unknownKey(path: string, origins: Origins): string {
  const sources = originsOf(origins, path);
  const variables = sources.filter((o) => o.startsWith("env ")).map((o) => o.slice("env ".length));
  const hints =
    variables.length === 0
      ? [keyHint(path, ConfigSchema)]
      : variables.map((v) => `${variables.length > 1 ? `${v}: ` : ""}${envHint(v, ConfigSchema)}`);
  return `${path}: unknown key${from(origins, path)}; ${hints.join("; ")}`;
}

function from(origins: Origins, path: string): string {
  const sources = originsOf(origins, path);
  return sources.length > 0 ? ` (from ${sources.join(", ")})` : "";
}

/**
 * Origins are recorded per leaf: an item of a list takes its list's origin,
 * and an unknown section takes the origins of the leaves under it.
 */
function originsOf(origins: Origins, path: string): string[] {
  const segments = path.split(".");
  for (let i = segments.length; i > 0; i--) {
    const origin = origins.get(segments.slice(0, i).join("."));
    if (origin) return [origin];
  }
  return [...new Set([...origins].filter(([p]) => p.startsWith(`${path}.`)).map(([, o]) => o))];
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

export function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
