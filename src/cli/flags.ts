import type { RawConfig } from "../config/sources.js";
import { setPath } from "../config/sources.js";

export interface ServerFlags {
  config?: string;
  host?: string;
  port?: string;
  dataDir?: string;
  workers?: string;
  logLevel?: string;
  role?: string;
}

/** Numbers stay strings when they are not numbers, so the schema reports them with the flag's name. */
function numeric(v: string): number | string {
  return /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
}

/** CLI flags as a config layer (the last and strongest). */
export function flagsToOverrides(flags: ServerFlags): RawConfig {
  const out: RawConfig = {};
  const set = (path: string[], value: unknown) => value !== undefined && setPath(out, path, value);
  set(["server", "host"], flags.host);
  set(["server", "port"], flags.port === undefined ? undefined : numeric(flags.port));
  set(["dataDir"], flags.dataDir);
  set(["workers", "count"], flags.workers === undefined ? undefined : numeric(flags.workers));
  set(["log", "level"], flags.logLevel);
  set(["roles"], flags.role);
  return out;
}
