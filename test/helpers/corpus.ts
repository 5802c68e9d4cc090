import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { isCI } from "./ci.js";

/** The shared photo corpus, outside the project; CORPUS_DIR overrides the default path. */
export const CORPUS_DIR = resolve(
  process.env.CORPUS_DIR ?? join(import.meta.dirname, "../../../shared/corpus"),
);

const present = existsSync(join(CORPUS_DIR, "good"));
if (!present) {
  const message = `corpus not found at ${CORPUS_DIR}; set CORPUS_DIR to the shared corpus directory`;
  if (isCI()) throw new Error(`${message} (under CI a missing corpus is a failure)`);
  console.warn(`\n*** SKIPPED: suites that need real photos — ${message} ***\n`);
}

export const hasCorpus = present;

export function corpusFiles(kind: "good" | "bad"): string[] {
  return present ? readdirSync(join(CORPUS_DIR, kind)).sort() : [];
}

export function corpusFile(kind: "good" | "bad", name: string): Buffer {
  return readFileSync(join(CORPUS_DIR, kind, name));
}
