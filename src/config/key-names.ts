import { z } from "zod";
import { editDistance } from "../util/edit-distance.js";
import { CLI_ENV_VARIABLES, ENV_PREFIX } from "./sources.js";

/**
 * The names a configuration key is known by (its dotted path and its
 * environment variable), read from the schema itself so they can never
 * drift from it, and the nearest known name for a misspelt one.
 */

/** Peels defaults, optionals and preprocessing off a schema to reach the shape under them. */
function unwrap(schema: z.ZodType): z.ZodType {
  let inner = schema;
  for (;;) {
    if (
      inner instanceof z.ZodDefault ||
      inner instanceof z.ZodPrefault ||
      inner instanceof z.ZodOptional ||
      inner instanceof z.ZodNullable
    ) {
      inner = inner.unwrap() as z.ZodType;
    } else if (inner instanceof z.ZodPipe) {
      // z.preprocess is pipe(transform, schema); .transform() is pipe(schema, transform).
      inner = (inner.out instanceof z.ZodTransform ? inner.in : inner.out) as z.ZodType;
    } else {
      return inner;
    }
  }
}

/** Every key of a schema, sections and leaves, as paths: `server`, `server.port`, … */
export function keyPaths(schema: z.ZodType, prefix: readonly string[] = []): string[][] {
  const inner = unwrap(schema);
  if (!(inner instanceof z.ZodObject)) return [[...prefix]];
  const children = Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([key, child]) =>
    keyPaths(child, [...prefix, key]),
  );
  return prefix.length > 0 ? [[...prefix], ...children] : children;
}

/** `["limits", "maxInputBytes"]` → `IMGFLEET_LIMITS__MAX_INPUT_BYTES` (the reverse of how env is read). */
export function envName(path: readonly string[]): string {
  return ENV_PREFIX + path.map((key) => key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("__");
}

/**
 * The closest candidate, when it is close enough to be a misspelling rather
 * than another name: a third of the name may be wrong (`SERVER_PORT` for
 * `SERVER__PORT`, `prot` for `port`). A shared prefix is left out of the count.
 */
export function nearest(name: string, candidates: readonly string[], prefix = ""): string | undefined {
  const own = (text: string) => (text.startsWith(prefix) ? text.slice(prefix.length) : text).toLowerCase();
  let best: { candidate: string; d: number } | undefined;
  for (const candidate of candidates) {
    const d = editDistance(own(name), own(candidate));
    if (best === undefined || d < best.d) best = { candidate, d };
  }
  return best && best.d <= Math.max(1, Math.floor(own(name).length / 3)) ? best.candidate : undefined;
}

/** What to tell someone who set an unknown IMGFLEET_* variable. */
export function envHint(variable: string, schema: z.ZodType): string {
  // Only leaves: a variable names one value, never a whole section.
  const paths = keyPaths(schema);
  const leaves = paths.filter((path) => !paths.some((p) => p.length > path.length && isUnder(p, path)));
  const match = nearest(variable, [...leaves.map(envName), ...CLI_ENV_VARIABLES], ENV_PREFIX);
  const fix = `rename the variable, or unset ${variable}`;
  if (match === undefined) {
    return `no configuration key is named like it (see the Configuration table in the README); ${fix}`;
  }
  if ((CLI_ENV_VARIABLES as readonly string[]).includes(match)) {
    return `did you mean ${match}? That one is read by the imgfleet CLI and ignored by the server; ${fix}`;
  }
  return `did you mean ${match}? ${fix}`;
}

function isUnder(path: readonly string[], section: readonly string[]): boolean {
  return section.every((key, i) => path[i] === key);
}

/** What to tell someone who wrote an unknown key in a file or a flag. */
export function keyHint(path: string, schema: z.ZodType): string {
  const match = nearest(
    path,
    keyPaths(schema).map((p) => p.join(".")),
  );
  return match === undefined ? "remove it or check its spelling" : `did you mean ${match}?`;
}
