import { readFileSync } from "node:fs";
import { descendants } from "./rss.js";
import type { CpuShare } from "./types.js";

/**
 * Clock ticks of the whole machine: all of them, the busy ones (not idle,
 * iowait or steal), and those the hypervisor gave to other guests (steal).
 */
function machineTicks(): { total: number; busy: number; steal: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq;
  return { total: busy + idle + iowait + steal, busy, steal };
}

/** utime, stime, cutime, cstime of a process (0s once it is gone). */
function cpuFields(pid: number): number[] {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return [0, 0, 0, 0];
  }
  // Fields after "(comm)": state is field 3, so utime (14) .. cstime (17) are 11..14.
  return stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .slice(11, 15)
    .map(Number);
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Own CPU of the process alone: its threads, no children. */
const ownTicks = (pid: number) => sum(cpuFields(pid).slice(0, 2));

/**
 * CPU of a process tree: each live process's own ticks plus those of the
 * children it reaped (an exited load generator, a recycled worker).
 */
const treeTicks = (root: number) => sum([root, ...descendants(root)].map((pid) => sum(cpuFields(pid))));

const pct = (ticks: number, total: number) => (total > 0 ? Math.round((ticks / total) * 1000) / 10 : 0);

/**
 * Where the machine's CPU went between start and stop: the server's process
 * tree (and its main process alone), everything the harness started, and the
 * rest ("other": processes outside the benchmark, i.e. noise).
 */
export function watchCpu(serverPid: number): { stop(): CpuShare } {
  const before = {
    machine: machineTicks(),
    bench: treeTicks(process.pid),
    server: treeTicks(serverPid),
    main: ownTicks(serverPid),
  };
  return {
    stop() {
      const machine = machineTicks();
      const total = machine.total - before.machine.total;
      const busy = machine.busy - before.machine.busy;
      const bench = treeTicks(process.pid) - before.bench;
      return {
        busyPct: pct(busy, total),
        serverPct: pct(treeTicks(serverPid) - before.server, total),
        serverMainPct: pct(ownTicks(serverPid) - before.main, total),
        benchPct: pct(bench, total),
        otherPct: pct(Math.max(0, busy - bench), total),
        stealPct: pct(machine.steal - before.machine.steal, total),
      };
    },
  };
}

/**
 * CPU the benchmark lost to others: processes outside it, and on a VM the
 * time the hypervisor gave to other guests, which no process here shows.
 */
export const noisePct = (cpu: Pick<CpuShare, "otherPct" | "stealPct">) =>
  Math.round((cpu.otherPct + cpu.stealPct) * 10) / 10;

/**
 * Waits until the server's process tree has gone quiet (at most `maxTicks`
 * clock ticks in a `windowMs` window): requests left in flight when a load
 * generator stopped are still being processed, and must not leak into the
 * next measurement. Gives up after `maxMs`; resolves with the time waited.
 */
export async function waitQuiet(pid: number, windowMs = 250, maxTicks = 3, maxMs = 15_000): Promise<number> {
  const started = performance.now();
  let last = treeTicks(pid);
  while (performance.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = treeTicks(pid);
    if (now - last <= maxTicks) break;
    last = now;
  }
  return Math.round(performance.now() - started);
}
