import { connect, type Socket } from "node:net";

/** An answer read off a raw socket: status, headers (lower-case names) and the whole body. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawUpload {
  socket: Socket;
  /** Sends the next `bytes` of the body (all that is left when omitted). */
  send(bytes?: number): Promise<void>;
  /** Resolves with the answer once the server closed the connection; null when it closed without a whole one. */
  answer: Promise<RawAnswer | null>;
  /** Bytes of the answer received so far. */
  received(): number;
  /** Leaves: the connection is destroyed, as a client that gives up does. */
  leave(): void;
}

/**
 * A POST over a raw TCP connection, so a test decides exactly when the client
 * leaves: before its body, part-way through it, or after it while the server
 * works. The request asks for `Connection: close`, so an answer ends with the
 * connection.
 */
export async function rawUpload(
  url: string,
  path: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<RawUpload> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  const answer = new Promise<RawAnswer | null>((resolve) => {
    socket.once("close", () => resolve(parseAnswer(Buffer.concat(chunks))));
  });
  const head = Object.entries({
    host: `${hostname}:${port}`,
    "content-length": String(body.length),
    connection: "close",
    ...headers,
  })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
  let sent = 0;
  return {
    socket,
    answer,
    received: () => chunks.reduce((n, c) => n + c.length, 0),
    async send(bytes = body.length - sent) {
      const part = body.subarray(sent, sent + bytes);
      sent += part.length;
      if (socket.destroyed) return;
      await new Promise<void>((resolve) => socket.write(part, () => resolve()));
    },
    leave: () => socket.destroy(),
  };
}

/** Parses an HTTP/1.1 answer with a Content-Length (or none: the rest is the body); null when incomplete. */
export function parseAnswer(bytes: Buffer): RawAnswer | null {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine = "", ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = bytes.subarray(end + 4);
  const length = headers["content-length"];
  if (length !== undefined && body.length < Number(length)) return null;
  return { status, headers, body: length === undefined ? body : body.subarray(0, Number(length)) };
}
