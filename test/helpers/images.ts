import sharp from "sharp";

/** A flat-colour image in the given format, made by sharp for the test. */
export async function solidImage(
  width: number,
  height: number,
  format: "jpeg" | "png" | "webp" | "gif" | "avif" | "tiff" = "jpeg",
  colour = { r: 200, g: 30, b: 30, alpha: 1 },
): Promise<Buffer> {
  const channels = format === "jpeg" ? 3 : 4;
  return sharp({ create: { width, height, channels, background: colour } })
    .toFormat(format)
    .toBuffer();
}

/** Left half red, right half blue: a crop's position shows in its colour. */
export async function splitImage(width: number, height: number): Promise<Buffer> {
  const half = Math.floor(width / 2);
  const blue = await sharp({
    create: { width: width - half, height, channels: 3, background: { r: 0, g: 0, b: 255 } },
  })
    .png()
    .toBuffer();
  return sharp({ create: { width, height, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .composite([{ input: blue, left: half, top: 0 }])
    .png()
    .toBuffer();
}

/** Gaussian noise: detail that blur removes and JPEG cannot compress away. */
export async function noiseImage(side: number): Promise<Buffer> {
  return sharp({
    create: {
      width: side,
      height: side,
      channels: 3,
      background: "#808080",
      noise: { type: "gaussian", mean: 128, sigma: 50 },
    },
  })
    .jpeg()
    .toBuffer();
}

/** An animated GIF with one flat frame per colour. */
export async function animatedGif(frames: number, width = 40, height = 30): Promise<Buffer> {
  const pages = await Promise.all(
    Array.from({ length: frames }, (_, i) =>
      sharp({
        create: { width, height, channels: 4, background: { r: (i * 50) % 256, g: 100, b: 0, alpha: 1 } },
      })
        .png()
        .toBuffer(),
    ),
  );
  return sharp(pages, { join: { animated: true } })
    .gif()
    .toBuffer();
}

/**
 * Input that keeps a worker busy for a second or more (3000² noise, blur σ=100
 * takes ~1.7 s on one core): for tests that need a job in flight.
 */
export async function slowJob(): Promise<{ body: Buffer; query: string }> {
  return { body: await noiseImage(3000), query: "blur=100" };
}

export async function stats(image: Buffer) {
  const s = await sharp(image).stats();
  return s;
}
