import { describe, expect, it, vi } from "vitest";
import { noiseImage } from "../helpers/images.js";
import { startNode } from "../helpers/node.js";

function liveArrayBuffers(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc (vitest.config.ts sets it)");
  gc();
  return process.memoryUsage().arrayBuffers;
}

describe("memory", () => {
  it("holds no image bytes once requests are answered", async () => {
    const { post } = await startNode();
    const image = await noiseImage(900);
    const send = async () => {
      const res = await post("/v1/resize?w=850&q=95", image);
      expect(res.status).toBe(200);
      return (await res.arrayBuffer()).byteLength;
    };
    await send();
    const before = liveArrayBuffers();
    let moved = 0;
    for (let round = 0; round < 15; round++) {
      const sizes = await Promise.all([send(), send(), send(), send()]);
      moved += sizes.reduce((a, b) => a + b, image.length * 4);
    }
    // 60 requests moved `moved` bytes; a leak of every input or output would keep tens of MB, for good.
    // Work still settling in the background (a batch being sealed and shipped, a scrape) may hold buffers
    // for a moment on a loaded machine, so the check is repeated for a few seconds; a leak never passes it.
    await vi.waitFor(
      () => {
        const grown = liveArrayBuffers() - before;
        expect(grown, `${moved} bytes moved`).toBeLessThan(Math.min(moved / 10, 8 * 2 ** 20));
      },
      { timeout: 5000, interval: 250 },
    );
  });
});
