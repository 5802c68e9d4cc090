import { readFileSync } from "node:fs";
import sharp from "sharp";
import type { RunningServer } from "./servers.js";
import type { Workload } from "./types.js";

export interface Response {
  status: number;
  headers: Headers;
  body: Buffer;
  ms: number;
}

/** One POST of the image, timed on the client from send to last byte. */
export async function post(
  url: string,
  body: Buffer,
  headers: Record<string, string> = {},
): Promise<Response> {
  const started = performance.now();
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "image/jpeg", ...headers },
    body,
  });
  const data = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body: data, ms: performance.now() - started };
}

export function resizeUrl(server: RunningServer, workload: Workload): string {
  return `${server.url}/v1/resize?${workload.query}`;
}

/** Both servers must answer the workload with a JPEG of the expected size before anything is measured. */
export async function checkWorkload(server: RunningServer, workload: Workload, file: string): Promise<void> {
  const res = await post(resizeUrl(server, workload), readFileSync(file), server.headers);
  const what = `${server.name} ${workload.id}`;
  if (res.status !== 200)
    throw new Error(`${what}: HTTP ${res.status}: ${res.body.toString().slice(0, 300)}`);
  const meta = await sharp(res.body).metadata();
  const { width, height } = workload.expect;
  if (meta.format !== "jpeg" || meta.width !== width || meta.height !== height) {
    throw new Error(
      `${what}: got ${meta.format} ${meta.width}x${meta.height}, expected jpeg ${width}x${height}`,
    );
  }
}
