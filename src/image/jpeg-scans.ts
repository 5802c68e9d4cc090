/**
 * Scans in a JPEG, counted from its markers without decoding. A progressive
 * (or multi-scan sequential) decoder makes one pass over every block of the
 * image per scan, so a file of a few hundred KB carrying thousands of tiny
 * scans holds a core for many seconds; a real photo has about ten.
 */

/** Markers without a length field: SOI, EOI, TEM and the restart markers inside entropy data. */
function standalone(marker: number): boolean {
  return marker === 0xd8 || marker === 0xd9 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7);
}

/**
 * Counts SOS markers, stopping early once `stopAbove` is passed (the caller
 * only needs to know that). Walks marker segments by their lengths (so an
 * embedded thumbnail's markers inside APP1 are skipped) and entropy-coded
 * data by its byte stuffing (0xFF 0x00 is data, 0xFF 0xD0-D7 a restart).
 * A truncated file simply ends the count: the decoder judges it later.
 */
export function countJpegScans(b: Buffer, stopAbove = Number.POSITIVE_INFINITY): number {
  let scans = 0;
  let at = 2;
  while (at + 1 < b.length && scans <= stopAbove) {
    if (b[at] !== 0xff) {
      // Entropy-coded data: jump to the next 0xFF that starts a marker.
      const next = b.indexOf(0xff, at);
      if (next < 0) break;
      at = next;
      continue;
    }
    const marker = b[at + 1] as number;
    if (marker === 0xff) {
      at++;
    } else if (marker === 0x00 || standalone(marker)) {
      if (marker === 0xd9) break;
      at += 2;
    } else {
      if (marker === 0xda) scans++;
      if (at + 3 >= b.length) break;
      at += 2 + b.readUInt16BE(at + 2);
    }
  }
  return scans;
}
