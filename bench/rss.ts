import { readdirSync, readFileSync } from "node:fs";
import type { ProcessSet, RssPeak } from "./types.js";

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback; // the process or thread went away between listing and reading
  }
}

function childrenOf(pid: number): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tids.flatMap((tid) =>
    readOr(`/proc/${pid}/task/${tid}/children`, "").split(" ").filter(Boolean).map(Number),
  );
}

/** Every process below `pid`, recursively, through /proc/<pid>/task/<tid>/children. */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const pending = childrenOf(pid);
  while (pending.length > 0) {
    const next = pending.pop() as number;
    found.push(next);
    pending.push(...childrenOf(next));
  }
  return found;
}

/** VmRSS in kB, 0 when the process is gone. */
function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readOr(`/proc/${pid}/status`, ""));
  return match ? Number(match[1]) : 0;
}

export function treeRss(pid: number): { kb: number; each: number[] } {
  const each = [pid, ...descendants(pid)].map(rssKb);
  return { kb: each.reduce((sum, kb) => sum + kb, 0), each };
}

const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;

/** Proportional set size in kB (smaps_rollup), 0 when the process is gone or it cannot be read. */
function pssKb(pid: number): number {
  const match = /^Pss:\s+(\d+)\s+kB/m.exec(readOr(`/proc/${pid}/smaps_rollup`, ""));
  return match ? Number(match[1]) : 0;
}

/** One tree, or several (the fleet); `processSet` of cpu.ts without the import cycle. */
const rootsOf = (server: number | ProcessSet) =>
  typeof server === "number" ? [{ label: String(server), pid: server }] : server.roots;

/**
 * Samples the RSS of a process tree (or of several: the fleet) every
 * `intervalMs` until stopped; reports the peak of the sums (all processes at
 * one instant), and with several roots each root's tree at that instant.
 * `stop` may be called again.
 */
export function sampleRss(server: number | ProcessSet, intervalMs = 100): { stop(): RssPeak } {
  const roots = rootsOf(server);
  const peak: RssPeak = { peakMb: 0, processesAtPeak: 0, perProcessMb: [], samples: 0 };
  let stopped = false;
  const sample = () => {
    const trees = roots.map((r) => treeRss(r.pid));
    const kb = trees.reduce((sum, t) => sum + t.kb, 0);
    const each = trees.flatMap((t) => t.each);
    peak.samples++;
    if (mb(kb) <= peak.peakMb) return;
    Object.assign(peak, { peakMb: mb(kb), processesAtPeak: each.length, perProcessMb: each.map(mb) });
    if (roots.length > 1)
      peak.perRootMb = Object.fromEntries(roots.map((r, i) => [r.label, mb(trees[i]?.kb ?? 0)]));
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      if (!stopped) {
        clearInterval(timer);
        sample();
        stopped = true;
        if (roots.length > 1) {
          const pids = roots.flatMap((r) => [r.pid, ...descendants(r.pid)]);
          peak.pssAtEndMb = mb(pids.reduce((sum, pid) => sum + pssKb(pid), 0));
        }
      }
      return { ...peak };
    },
  };
}
