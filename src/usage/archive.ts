import { type FileHandle, mkdir, open, readdir, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { encodeMember, wholeMembersLength } from "./gzip-members.js";
import type { MeterRecord, UsageBatch } from "./model.js";

const gunzipAsync = promisify(gunzip);
/** Files checked for a torn tail since start; bounded, since a check is cheap to repeat. */
const MAX_CHECKED_FILES = 10_000;

const DAY_MS = 86_400_000;
const SAFE_NAME = /^[\w-]{1,64}$/;
const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.ndjson\.gz$/;

/**
 * An archived record: the meter record plus the batch it came in (`b`) and
 * its place in that batch (`n`), by which readers drop a repeated batch
 * (request ids alone are the client's and need not be unique).
 */
export type ArchivedRecord = MeterRecord & { b: string; n: number };

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Raw meter records as gzipped NDJSON, one file per tenant per UTC day
 * (`<dir>/<tenant>/<YYYY-MM-DD>.ndjson.gz`). Each batch appends one gzip
 * member per file it touches; gzip readers take concatenated members as one
 * stream. A member torn by a crash mid-append is cut off before the next
 * append to its file (see gzip-members.ts). A crash between appending and
 * recording that the batch is archived can append the same batch twice, so
 * `read` keeps the first copy of each (batch, place in batch).
 */
export class UsageArchive {
  readonly #checked = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly retentionDays: number,
  ) {}

  async write(batch: UsageBatch): Promise<void> {
    const files = new Map<string, string[]>();
    for (const [n, record] of batch.records.entries()) {
      const file = this.#file(record.tenant, utcDay(record.at));
      const lines = files.get(file) ?? [];
      lines.push(JSON.stringify({ ...record, b: batch.id, n }));
      files.set(file, lines);
    }
    for (const [file, lines] of files) await this.#append(file, `${lines.join("\n")}\n`);
  }

  /** One tenant's records of one UTC day, each once; empty when there is no file. */
  async read(tenant: string, day: string): Promise<ArchivedRecord[]> {
    const bytes = await readWholeMembers(this.#file(tenant, day));
    if (!bytes) return [];
    const seen = new Set<string>();
    const records: ArchivedRecord[] = [];
    for (const line of (await gunzipAsync(bytes)).toString("utf8").split("\n")) {
      if (!line) continue;
      const record = JSON.parse(line) as ArchivedRecord;
      const key = `${record.b}\u0000${record.n}`;
      if (seen.has(key)) continue;
      seen.add(key);
      records.push(record);
    }
    return records;
  }

  /** Deletes days older than the retention; returns how many files went. */
  async sweep(now = Date.now()): Promise<number> {
    const oldestKept = utcDay(now - (this.retentionDays - 1) * DAY_MS);
    let removed = 0;
    for (const tenant of await listDir(this.dir)) {
      const tenantDir = join(this.dir, tenant);
      const files = await listDir(tenantDir);
      for (const file of files) {
        const day = DAY_FILE.exec(file)?.[1];
        if (day && day < oldestKept) {
          await rm(join(tenantDir, file), { force: true });
          removed++;
        }
      }
      // Only succeeds when empty; a record arriving meanwhile simply recreates the directory.
      await rmdir(tenantDir).catch(() => {});
    }
    return removed;
  }

  async #append(file: string, text: string): Promise<void> {
    await mkdir(join(file, ".."), { recursive: true });
    const handle = await open(file, "a+");
    try {
      if (!this.#checked.has(file)) {
        const whole = await wholeMembersLength(handle);
        if (whole < (await handle.stat()).size) await handle.truncate(whole);
        if (this.#checked.size >= MAX_CHECKED_FILES) this.#checked.clear();
        this.#checked.add(file);
      }
      await handle.write(encodeMember(Buffer.from(text, "utf8")));
      // The batch is marked archived in the database right after: the bytes must be on disk first.
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  #file(tenant: string, day: string): string {
    if (!SAFE_NAME.test(tenant)) throw new Error(`not a tenant id usable as a file name: ${tenant}`);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`not a day (YYYY-MM-DD): ${day}`);
    return join(this.dir, tenant, `${day}.ndjson.gz`);
  }
}

/** The file's whole members (a torn tail left by a crash is not read); null when there is no file. */
async function readWholeMembers(file: string): Promise<Buffer | null> {
  let handle: FileHandle;
  try {
    handle = await open(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  try {
    const length = await wholeMembersLength(handle);
    const bytes = Buffer.alloc(length);
    await handle.read(bytes, 0, length, 0);
    return bytes;
  } finally {
    await handle.close();
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
