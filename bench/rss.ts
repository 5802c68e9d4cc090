import { readdirSync, readFileSync } from "node:fs";
import type { RssPeak } from "./types.js";

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

/**
 * Samples the RSS of a process tree every `intervalMs` until stopped; reports
 * the peak of the sums (all processes at one instant). `stop` may be called again.
 */
export function sampleRss(pid: number, intervalMs = 100): { stop(): RssPeak } {
  const peak: RssPeak = { peakMb: 0, processesAtPeak: 0, perProcessMb: [], samples: 0 };
  let stopped = false;
  const sample = () => {
    const { kb, each } = treeRss(pid);
    peak.samples++;
    if (mb(kb) > peak.peakMb)
      Object.assign(peak, { peakMb: mb(kb), processesAtPeak: each.length, perProcessMb: each.map(mb) });
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      if (!stopped) {
        clearInterval(timer);
        sample();
        stopped = true;
      }
      return { ...peak };
    },
  };
}
