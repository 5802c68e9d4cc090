import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { countJpegScans } from "../../src/image/jpeg-scans.js";
import { MAX_JPEG_SCANS } from "../../src/image/probe.js";
import { solidImage } from "../helpers/images.js";
import { poolOf, startNode } from "../helpers/node.js";
import { scanBomb } from "../helpers/scan-bomb.js";

async function problemOf(res: Response) {
  return (await res.json()) as { type: string; status: number; detail: string; maxScans?: number };
}

/** CPU this process spends decoding and resizing `input` (libvips' threads included). */
async function decodeCpuMs(input: Buffer): Promise<number> {
  const before = process.cpuUsage();
  await sharp(input, { failOn: "truncated", sequentialRead: true }).resize(300).jpeg().toBuffer();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

describe("a JPEG scan bomb", () => {
  it("really is slow to decode: a few KB of empty scans cost libvips over 10x the CPU of the same picture without them", async () => {
    const bomb = await scanBomb(4000, 2_500);
    const plain = await scanBomb(4000, 0);
    expect(bomb.length - plain.length).toBeLessThan(100_000);
    // ~2.5 s of CPU against ~0.05 s; at 20,000 scans (700 KB) it is ~20 s, past any per-image timeout.
    expect(await decodeCpuMs(bomb)).toBeGreaterThan(10 * (await decodeCpuMs(plain)));
  });

  it("is refused from its header with 422 too-many-scans, before any worker runs it", async () => {
    const { node, post } = await startNode();
    const started: string[] = [];
    poolOf(node).on("job-start", ({ jobId }) => started.push(jobId));
    const res = await post("/v1/resize?w=300", await scanBomb(4000, 20_000));
    expect(res.status).toBe(422);
    const problem = await problemOf(res);
    expect(problem.type).toBe("/problems/too-many-scans");
    expect(problem.maxScans).toBe(MAX_JPEG_SCANS);
    expect(started).toEqual([]);
  });

  it("ordinary progressive and baseline JPEGs pass, and their scans are counted from the markers", async () => {
    const { post } = await startNode();
    const progressive = await sharp(await solidImage(600, 400))
      .jpeg({ progressive: true })
      .toBuffer();
    expect(countJpegScans(progressive)).toBeGreaterThan(1);
    expect(countJpegScans(progressive)).toBeLessThanOrEqual(MAX_JPEG_SCANS);
    expect(countJpegScans(await solidImage(600, 400))).toBe(1);
    expect(countJpegScans(await scanBomb(200, 150))).toBeGreaterThan(150);
    expect((await post("/v1/resize?w=100", progressive)).status).toBe(200);
    expect((await post("/v1/resize?w=100", await scanBomb(200, MAX_JPEG_SCANS + 1))).status).toBe(422);
  });
});
