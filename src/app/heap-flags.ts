/**
 * V8 flags every imgfleet server process runs with (`npm start`, the
 * installed `imgfleet` binary, the systemd unit, the dev fleet, the bench).
 *
 * A node moves a few hundred KB per request through short-lived buffers.
 * With V8's default first old-generation limit (a few tens of MB above a
 * ~22 MB live heap) that rate keeps the heap near its limit, and V8 runs a
 * full mark-compact every ~250 ms that frees 1-2 MB each time. Starting the
 * limit at 64 MB removes those: in the fleet benchmark (W3, 4 connections)
 * mark-compacts fell from ~50 to ~1 per 20 s per node and CPU per request
 * from 21.9 to 18.3 ms, for ~25 MB more RSS per node. The flag only raises
 * the first limit; V8 still sizes the heap from live data afterwards.
 */
export const SERVER_HEAP_FLAGS: readonly string[] = ["--initial-old-space-size=64"];

/** `flags` with the server heap flags first, unless `flags` already sets them (its value wins). */
export function withServerHeapFlags(flags: readonly string[]): string[] {
  const missing = SERVER_HEAP_FLAGS.filter((f) => !flags.some((g) => g.startsWith(`${f.split("=")[0]}=`)));
  return [...missing, ...flags];
}
