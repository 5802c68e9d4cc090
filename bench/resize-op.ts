import sharp, { type FitEnum } from "sharp";

/**
 * The bare image work of a workload, shared by the ceiling server and the
 * in-process sharp measurements: resize, JPEG at quality 80, nothing else.
 */
export function resizeOp(input: Buffer, params: URLSearchParams): Promise<Buffer> {
  const size = (key: string) => (params.has(key) ? Number(params.get(key)) : undefined);
  const fit = (params.get("fit") ?? "cover") as keyof FitEnum;
  return sharp(input)
    .resize({ width: size("w"), height: size("h"), fit })
    .jpeg({ quality: 80 })
    .toBuffer();
}
