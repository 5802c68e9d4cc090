import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Directories handed to servers and not removed yet. */
const made = new Set<string>();

/**
 * An empty directory of its own for one imgfleet: it keeps a PGlite database
 * and a pid lock there, and the first start on an empty one creates the
 * bootstrap admin key. Sharing ./data would lock out a second server and let
 * one run's tenants leak into the next.
 */
export function freshDataDir(prefix = "imgfleet-bench-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  made.delete(dir);
}

/** At exit: whatever a server could not remove itself (the harness is going down with it). */
export function removeAllDataDirs(): void {
  for (const dir of made) removeDataDir(dir);
}
