import type { Counter } from "prom-client";
import type { Metrics } from "../metrics/metrics.js";
import type { EventLog, OpsEventKind } from "./events.js";

/** Self-healing actions are summed over this long into one event each: a busy minute is one line, not thousands. */
export const REPORT_INTERVAL_MS = 60_000;

/** One kind of action the node takes by itself, read from the counter it already increments. */
interface Action {
  kind: OpsEventKind;
  read: (m: Metrics) => Promise<number>;
  message: (n: number, minutes: string) => string;
  details: Record<string, unknown>;
}

const ACTIONS: readonly Action[] = [
  {
    kind: "job.dropped",
    read: (m) => total(m.jobsExpired),
    message: (n, over) =>
      `dropped ${n} job${s(n)} whose deadline had passed before a worker took ${n === 1 ? "it" : "them"} ${over}`,
    details: { action: "expired-jobs-dropped" },
  },
  {
    kind: "job.dropped",
    read: (m) => total(m.workerRestarts, { reason: "timeout" }),
    message: (n, over) =>
      `stopped ${n} job${s(n)} that ran past the per-image time limit and replaced ${n === 1 ? "its worker" : "their workers"} ${over}`,
    details: { action: "stuck-jobs-terminated" },
  },
  {
    kind: "sweep",
    read: (m) => total(m.usage.segmentsDeleted),
    message: (n, over) => `deleted ${n} usage spool segment${s(n)} whose batches were all committed ${over}`,
    details: { action: "spool-segments-deleted" },
  },
];

/**
 * Turns what a node does by itself into informational events, summed per
 * REPORT_INTERVAL_MS and recorded only when non-zero: jobs dropped past
 * their deadline, stuck jobs terminated, committed spool segments deleted.
 * It reads the counters those modules already keep, so they need no new
 * dependency. (Archive sweeps and lease take-overs record their own
 * events, as they happen rarely.) Never notifies anyone.
 */
export class SelfHealingReport {
  #timer: NodeJS.Timeout | undefined;
  #last: number[] | undefined;
  #since = Date.now();
  #running: Promise<void> = Promise.resolve();

  constructor(
    private readonly metrics: Metrics,
    private readonly events: Pick<EventLog, "record">,
    private readonly intervalMs = REPORT_INTERVAL_MS,
  ) {}

  async start(): Promise<void> {
    this.#last = await Promise.all(ACTIONS.map((a) => a.read(this.metrics)));
    this.#since = Date.now();
    this.#timer = setInterval(() => void this.flush(), this.intervalMs);
    this.#timer.unref();
  }

  /** Records what happened since the last report now (the timer does this every interval; tests and stop call it). */
  flush(): Promise<void> {
    this.#running = this.#running.then(() => this.#report());
    return this.#running;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  async #report(): Promise<void> {
    if (!this.#last) return;
    const now = await Promise.all(ACTIONS.map((a) => a.read(this.metrics)));
    const minutes = Math.max(1, Math.round((Date.now() - this.#since) / 60_000));
    const over = `in the last ${minutes === 1 ? "minute" : `${minutes} minutes`}`;
    for (const [i, action] of ACTIONS.entries()) {
      const n = (now[i] ?? 0) - (this.#last[i] ?? 0);
      if (n > 0)
        await this.events.record(action.kind, action.message(n, over), {
          ...action.details,
          count: n,
          minutes,
        });
    }
    this.#last = now;
    this.#since = Date.now();
  }
}

async function total(counter: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}

function s(n: number): string {
  return n === 1 ? "" : "s";
}
