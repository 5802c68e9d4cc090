import { readFileSync } from "node:fs";

/**
 * Clock ticks per second in /proc (USER_HZ). Linux fixes it at 100 for
 * userspace on every architecture Node supports, whatever the kernel's HZ.
 */
const USER_HZ = 100;

/**
 * CPU a live process has used so far (user + system, all its threads), in
 * milliseconds, read from /proc/<pid>/stat by the supervisor: it needs
 * nothing from the process, so it is known for a worker stuck in a decoder
 * and right before one is killed. Undefined when it cannot be read (the
 * process is gone, or no /proc on this system).
 */
export function processCpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15; fields[0] here is field 3.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / USER_HZ;
}
