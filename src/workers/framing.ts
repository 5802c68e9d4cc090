import type { Socket } from "node:net";

/**
 * Length-prefixed frames over the worker's data socket: an 8-byte prefix
 * (header length, body length), a JSON header, then raw body bytes. Image
 * bytes cross the process boundary once each way with no serialisation
 * copy, which Node's IPC channel would make on both sides.
 */
export interface Frame<H> {
  header: H;
  body: Buffer;
}

const PREFIX_BYTES = 8;
const EMPTY = Buffer.alloc(0);

export function writeFrame(socket: Socket, header: object, body?: Uint8Array): void {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  prefix.writeUInt32BE(json.length, 0);
  prefix.writeUInt32BE(body?.length ?? 0, 4);
  socket.cork();
  socket.write(prefix);
  socket.write(json);
  if (body && body.length > 0) socket.write(body);
  socket.uncork();
}

/**
 * Reassembles frames from socket chunks and hands each complete one to
 * `onFrame`, its header as JSON text: the reader checks it against its
 * schema (see protocol.ts), so a malformed header is refused there instead
 * of throwing here, in a socket handler.
 */
export function readFrames(socket: Socket, onFrame: (frame: Frame<string>) => void): void {
  let chunks: Buffer[] = [];
  let buffered = 0;
  /** Bytes of the frame being received, once its prefix is in. */
  let frameBytes: number | undefined;
  // Joins chunks only when a whole prefix or frame is there: one copy per frame, not one per chunk.
  const joined = (): Buffer => {
    if (chunks.length !== 1) chunks = [Buffer.concat(chunks)];
    return chunks[0] as Buffer;
  };
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (frameBytes === undefined) {
        if (buffered < PREFIX_BYTES) return;
        const head = joined();
        frameBytes = PREFIX_BYTES + head.readUInt32BE(0) + head.readUInt32BE(4);
      }
      if (buffered < frameBytes) return;
      const all = joined();
      const headerEnd = PREFIX_BYTES + all.readUInt32BE(0);
      const header = all.toString("utf8", PREFIX_BYTES, headerEnd);
      const body = headerEnd === frameBytes ? EMPTY : all.subarray(headerEnd, frameBytes);
      const rest = all.subarray(frameBytes);
      chunks = rest.length > 0 ? [rest] : [];
      buffered = rest.length;
      frameBytes = undefined;
      onFrame({ header, body });
    }
  });
}
