import { readFileSync } from "node:fs";
import { descendants } from "./rss.js";
import type { CpuShare, ProcessSet } from "./types.js";

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
 * CPU of process trees: each live process's own ticks plus those of the
 * children it reaped (an exited load generator, a recycled worker, a
 * PostgreSQL backend); a process under two roots counts once.
 */
function treeTicks(roots: number | readonly number[]): number {
  const pids = new Set<number>();
  for (const root of typeof roots === "number" ? [roots] : roots) {
    pids.add(root);
    for (const pid of descendants(root)) pids.add(pid);
  }
  return sum([...pids].map((pid) => sum(cpuFields(pid))));
}

const pct = (ticks: number, total: number) => (total > 0 ? Math.round((ticks / total) * 1000) / 10 : 0);

/** One process tree (a server and its workers), or a set of them as they are. */
export function processSet(server: number | ProcessSet): ProcessSet {
  return typeof server === "number"
    ? { roots: [{ label: String(server), pid: server }], main: [server] }
    : server;
}

const rootPids = (set: ProcessSet) => set.roots.map((r) => r.pid);

/**
 * Where the machine's CPU went between start and stop: the server's process
 * tree (or trees) and its main process(es) alone, everything the harness
 * started, and the rest ("other": processes outside the benchmark, i.e.
 * noise). With several roots, each root's share too.
 */
export function watchCpu(server: number | ProcessSet): { stop(): CpuShare } {
  const set = processSet(server);
  const mainTicks = () => sum(set.main.map(ownTicks));
  const perRoot = () => set.roots.map((r) => treeTicks(r.pid));
  const perRootOwn = () => set.roots.map((r) => ownTicks(r.pid));
  const before = {
    machine: machineTicks(),
    bench: treeTicks(process.pid),
    server: treeTicks(rootPids(set)),
    main: mainTicks(),
    roots: perRoot(),
    rootsOwn: perRootOwn(),
  };
  return {
    stop() {
      const machine = machineTicks();
      const total = machine.total - before.machine.total;
      const busy = machine.busy - before.machine.busy;
      const bench = treeTicks(process.pid) - before.bench;
      const roots = perRoot();
      const rootsOwn = perRootOwn();
      const share: CpuShare = {
        busyPct: pct(busy, total),
        serverPct: pct(treeTicks(rootPids(set)) - before.server, total),
        serverMainPct: pct(mainTicks() - before.main, total),
        benchPct: pct(bench, total),
        otherPct: pct(Math.max(0, busy - bench), total),
        stealPct: pct(machine.steal - before.machine.steal, total),
      };
      if (set.roots.length < 2) return share;
      const perRootPct = Object.fromEntries(
        set.roots.map((r, i) => [r.label, pct((roots[i] ?? 0) - (before.roots[i] ?? 0), total)]),
      );
      const perRootOwnPct = Object.fromEntries(
        set.roots.map((r, i) => [r.label, pct((rootsOwn[i] ?? 0) - (before.rootsOwn[i] ?? 0), total)]),
      );
      return { ...share, perRootPct, perRootOwnPct };
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
 * Clock ticks a set of process trees takes per `windowMs` while idle, over
 * `windows` windows: the median and the largest. The fleet is never silent
 * (NATS heartbeats, Raft, timers), so waitQuiet needs this as its allowance.
 */
export async function idleTicks(
  server: number | ProcessSet,
  windows = 12,
  windowMs = 250,
): Promise<{ median: number; max: number }> {
  const pids = rootPids(processSet(server));
  const seen: number[] = [];
  let last = treeTicks(pids);
  for (let i = 0; i < windows; i++) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = treeTicks(pids);
    seen.push(now - last);
    last = now;
  }
  seen.sort((a, b) => a - b);
  return { median: seen[Math.floor(seen.length / 2)] ?? 0, max: seen.at(-1) ?? 0 };
}

/**
 * Waits until the server's process tree (or trees) has gone quiet (at most
 * `maxTicks` clock ticks in a `windowMs` window): requests left in flight
 * when a load generator stopped are still being processed, and must not leak
 * into the next measurement. Gives up after `maxMs`; resolves with the time waited.
 */
export async function waitQuiet(
  server: number | ProcessSet,
  windowMs = 250,
  maxTicks = 3,
  maxMs = 15_000,
): Promise<number> {
  const pids = rootPids(processSet(server));
  const started = performance.now();
  let last = treeTicks(pids);
  while (performance.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = treeTicks(pids);
    if (now - last <= maxTicks) break;
    last = now;
  }
  return Math.round(performance.now() - started);
}
