/**
 * Logs a repeated failure once per interval with a count, rather than once
 * per occurrence: a full disk refused 4,281 requests in 45 s, and a line for
 * each buried the one that said why.
 *
 * The first occurrence of a key is written at once (`repeats` 0). Later
 * occurrences within the interval are only counted; when the interval ends
 * with some counted, one line says how many (`repeats` N, with the last
 * occurrence's details) and a new interval starts. An interval that ends
 * with none closes the burst: the next occurrence is written at once again.
 */
export class RepeatedLog {
  readonly #windows = new Map<string, Window>();

  constructor(readonly intervalMs: number) {}

  /** `line(repeats)` writes the log line; it is called now, or at the end of this interval with the count. */
  report(key: string, line: (repeats: number) => void): void {
    const open = this.#windows.get(key);
    if (open) {
      open.repeats += 1;
      open.line = line;
      return;
    }
    line(0);
    this.#open(key, line);
  }

  /** Writes the pending counts now and forgets every key (shutdown). */
  close(): void {
    for (const [key, window] of this.#windows) {
      clearTimeout(window.timer);
      this.#windows.delete(key);
      if (window.repeats > 0) window.line(window.repeats);
    }
  }

  #open(key: string, line: (repeats: number) => void): void {
    const window: Window = { repeats: 0, line, timer: setTimeout(() => this.#end(key), this.intervalMs) };
    window.timer.unref();
    this.#windows.set(key, window);
  }

  #end(key: string): void {
    const window = this.#windows.get(key);
    if (!window) return;
    this.#windows.delete(key);
    if (window.repeats === 0) return;
    window.line(window.repeats);
    this.#open(key, window.line);
  }
}

interface Window {
  repeats: number;
  /** The last occurrence's line: the summary carries its details. */
  line: (repeats: number) => void;
  timer: NodeJS.Timeout;
}

/** " (37 more times in the last 10 s)" for a summary line, "" for a first one. */
export function repeatsNote(repeats: number, intervalMs: number): string {
  if (repeats === 0) return "";
  return ` (${repeats} more time${repeats === 1 ? "" : "s"} in the last ${Math.round(intervalMs / 1000)} s)`;
}
