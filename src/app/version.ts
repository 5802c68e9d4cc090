import { readFileSync } from "node:fs";

/** This build's version, from package.json (shown in discovery, the CLI and support reports). */
export const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
