import { readFileSync } from "node:fs";
import { descendants } from "./rss.js";
import type { CpuShare } from "./types.js";

/** Clock ticks of the whole machine: all of them, and the busy ones (not idle, iowait or steal). */
function machineTicks(): { total: number; busy: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return {
    total: user + nice + system + idle + iowait + irq + softirq + steal,
    busy: user + nice + system + irq + softirq,
  };
}

/**
 * utime + stime + cutime + cstime of one process: its own CPU plus that of
 * the children it has reaped (an exited load generator, a recycled worker).
 */
function processTicks(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
}

function treeTicks(root: number): number {
  return [root, ...descendants(root)].reduce((sum, pid) => sum + processTicks(pid), 0);
}

const pct = (ticks: number, total: number) => (total > 0 ? Math.round((ticks / total) * 1000) / 10 : 0);

/**
 * Where the machine's CPU went between start and stop: the server's process
 * tree, everything the harness started (harness, servers, load generator),
 * and the rest ("other": processes outside the benchmark, i.e. noise).
 */
export function watchCpu(serverPid: number): { stop(): CpuShare } {
  const before = { machine: machineTicks(), ours: treeTicks(process.pid), server: treeTicks(serverPid) };
  return {
    stop() {
      const machine = machineTicks();
      const total = machine.total - before.machine.total;
      const busy = machine.busy - before.machine.busy;
      const ours = treeTicks(process.pid) - before.ours;
      return {
        busyPct: pct(busy, total),
        serverPct: pct(treeTicks(serverPid) - before.server, total),
        benchPct: pct(ours, total),
        otherPct: pct(Math.max(0, busy - ours), total),
      };
    },
  };
}
