/**
 * The ceiling: the least an HTTP resize can do. Reads the upload, resizes it
 * per the query string (w, h, fit) and answers the JPEG. No validation, no
 * queue, no metrics, no logging. Prints {"port":N} once listening.
 *   node --import tsx bench/ceiling-server.ts
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resizeOp } from "./resize-op.js";

const server = createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    const out = await resizeOp(Buffer.concat(chunks), new URL(req.url ?? "/", "http://x").searchParams);
    res.writeHead(200, { "content-type": "image/jpeg", "content-length": out.length }).end(out);
  } catch (error) {
    res.writeHead(500).end(String(error));
  }
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
