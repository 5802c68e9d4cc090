import type { RunningServer } from "./servers.js";
import { percentiles } from "./stats.js";
import type { ServerTimings } from "./types.js";

type Timings = Record<string, number>;

function timingsOf(line: string): Timings | undefined {
  if (!line.includes('"/v1/resize"')) return undefined;
  try {
    const entry = JSON.parse(line) as { route?: string; status?: number; timings?: Timings };
    return entry.route === "/v1/resize" && entry.status === 200 ? entry.timings : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Collects the latency breakdown imgfleet logs for every request (one line
 * per request at info), to see where time goes under load.
 */
export function collectTimings(server: RunningServer): { stop(): ServerTimings } {
  const seen: Timings[] = [];
  const unsubscribe = server.onLine((line) => {
    const timings = timingsOf(line);
    if (timings) seen.push(timings);
  });
  const of = (key: (t: Timings) => number) => percentiles(seen.map(key));
  const get = (t: Timings, name: string) => t[name] ?? Number.NaN;
  return {
    stop() {
      unsubscribe();
      return {
        total: of((t) => get(t, "total")),
        auth: of((t) => get(t, "auth")),
        probe: of((t) => get(t, "probe")),
        queue: of((t) => get(t, "queue")),
        process: of((t) => get(t, "process")),
        cpu: of((t) => get(t, "cpu")),
        other: of((t) => get(t, "total") - get(t, "process") - get(t, "probe") - get(t, "queue")),
        processSumMs: Math.round(seen.reduce((sum, t) => sum + (t.process ?? 0), 0)),
      };
    },
  };
}
