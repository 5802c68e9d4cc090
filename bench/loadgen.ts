/**
 * The load generator, run as its own process for either server:
 *   node --import tsx bench/loadgen.ts <url> <file> <connections> <seconds>
 * Sends the file as a binary body (autocannon's CLI `-i` reads it as UTF-8 and
 * mangles binary images) and prints autocannon's result as one JSON line.
 * Extra request headers (the API key) arrive as a JSON object in
 * BENCH_LOADGEN_HEADERS, not in argv, where `ps` would show the key.
 */
import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const [url, file, connections, seconds] = process.argv.slice(2);
if (!url || !file || !connections || !seconds) {
  process.stderr.write("usage: loadgen.ts <url> <file> <connections> <seconds>\n");
  process.exit(2);
}

function extraHeaders(raw: string | undefined): Record<string, string> {
  if (!raw) return {};
  const parsed: unknown = JSON.parse(raw);
  const valid =
    typeof parsed === "object" &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.values(parsed).every((v) => typeof v === "string");
  if (!valid) throw new Error("BENCH_LOADGEN_HEADERS: expected a JSON object of strings");
  return parsed as Record<string, string>;
}

const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  method: "POST",
  headers: { "content-type": "image/jpeg", ...extraHeaders(process.env.BENCH_LOADGEN_HEADERS) },
  body: readFileSync(file),
  timeout: 30,
});
process.stdout.write(`${JSON.stringify(result)}\n`);
