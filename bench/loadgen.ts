/**
 * The load generator, run as its own process for either server:
 *   node --import tsx bench/loadgen.ts <url> <file> <connections> <seconds>
 * Sends the file as a binary body (autocannon's CLI `-i` reads it as UTF-8 and
 * mangles binary images) and prints autocannon's result as one JSON line.
 */
import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const [url, file, connections, seconds] = process.argv.slice(2);
if (!url || !file || !connections || !seconds) {
  process.stderr.write("usage: loadgen.ts <url> <file> <connections> <seconds>\n");
  process.exit(2);
}

const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  method: "POST",
  headers: { "content-type": "image/jpeg" },
  body: readFileSync(file),
  timeout: 30,
});
process.stdout.write(`${JSON.stringify(result)}\n`);
