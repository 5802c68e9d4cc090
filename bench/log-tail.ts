import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";

const POLL_MS = 100;
const CHUNK = 1 << 20;

/**
 * Follows log files (the fleet's API nodes write theirs to the state
 * directory, not to a pipe of ours): every line appended after `start` goes
 * to the listeners, polled every 100 ms while there is a listener. A
 * RunningServer's `onLine` for a server whose stdout is not ours.
 */
export class LogTail {
  readonly #files: { path: string; fd: number; offset: number; partial: string; decoder: StringDecoder }[];
  readonly #listeners = new Set<(line: string) => void>();
  #timer: NodeJS.Timeout | undefined;
  #lines = 0;

  constructor(paths: string[]) {
    this.#files = paths.map((path) => {
      const fd = openSync(path, "r");
      return { path, fd, offset: fstatSync(fd).size, partial: "", decoder: new StringDecoder("utf8") };
    });
  }

  /** Lines seen so far (only while someone listened: nothing is read otherwise). */
  lines(): number {
    return this.#lines;
  }

  onLine(listener: (line: string) => void): () => void {
    if (this.#listeners.size === 0) {
      this.#skipToEnd();
      this.#timer = setInterval(() => this.#poll(), POLL_MS);
    }
    this.#listeners.add(listener);
    return () => {
      // Whatever the files hold by now belongs to the measurement that is ending.
      this.#poll();
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) clearInterval(this.#timer);
    };
  }

  close(): void {
    clearInterval(this.#timer);
    this.#listeners.clear();
    for (const file of this.#files) closeSync(file.fd);
  }

  #skipToEnd(): void {
    for (const file of this.#files) {
      file.offset = fstatSync(file.fd).size;
      file.partial = "";
      file.decoder = new StringDecoder("utf8");
    }
  }

  #poll(): void {
    const buffer = Buffer.alloc(CHUNK);
    for (const file of this.#files) {
      for (;;) {
        const read = readSync(file.fd, buffer, 0, CHUNK, file.offset);
        if (read === 0) break;
        file.offset += read;
        const text = file.partial + file.decoder.write(buffer.subarray(0, read));
        const lines = text.split("\n");
        file.partial = lines.pop() ?? "";
        for (const line of lines) {
          this.#lines++;
          for (const listener of this.#listeners) listener(line);
        }
      }
    }
  }
}
