import { connect, type Socket } from "node:net";

/** What came back on a raw connection by the time it closed. */
export interface RawAnswer {
  /** undefined when the connection closed without an answer. */
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
}

/** A POST to /v1/resize written by hand on a socket, so the test decides when each byte goes out. */
export interface RawUpload {
  socket: Socket;
  /** Writes `bytes` bytes of the body (zeros), unless an answer has started to arrive. */
  send(bytes: number): void;
  /** Writes one byte every `everyMs` until an answer arrives or the connection closes. */
  trickle(everyMs: number): void;
  /** Whether any answer bytes have arrived. */
  answered(): boolean;
  /** Resolves when the connection closes: the answer it carried, parsed. */
  closed: Promise<RawAnswer>;
  /** Closes the connection from the client side. */
  destroy(): void;
}

const BOUNDARY = "raw-upload-boundary";

/**
 * Opens a connection and writes the request's head. `declaredBytes` is the
 * Content-Length; null sends the body chunked (no declared length). With
 * `multipart`, the body is a multipart/form-data form whose `image` part's
 * header is sent at once (and counted in `declaredBytes`), unless
 * `partHeader` is false.
 */
export function rawUpload(
  url: string,
  apiKey: string,
  declaredBytes: number | null,
  options: { multipart?: boolean; partHeader?: boolean } = {},
): RawUpload {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.setNoDelay(true);
  let received = "";
  let timer: NodeJS.Timeout | undefined;
  socket.on("data", (data) => {
    received += data.toString("latin1");
  });
  // Writes racing the server's close end in EPIPE/ECONNRESET: the answer, if any, is what counts.
  socket.on("error", () => {});
  const closed = new Promise<RawAnswer>((resolve) =>
    socket.once("close", () => {
      clearInterval(timer);
      resolve(parseAnswer(received));
    }),
  );
  const length = declaredBytes === null ? "Transfer-Encoding: chunked" : `Content-Length: ${declaredBytes}`;
  const type = options.multipart ? `multipart/form-data; boundary=${BOUNDARY}` : "image/jpeg";
  socket.write(
    `POST /v1/resize?w=16 HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${apiKey}\r\nContent-Type: ${type}\r\n${length}\r\n\r\n`,
  );
  // Without the part's header, what follows is the form's preamble: no file ever starts.
  if (options.multipart && options.partHeader !== false) {
    socket.write(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
    );
  }
  const send = (bytes: number) => {
    if (received !== "" || socket.destroyed) return;
    const body = Buffer.alloc(bytes);
    socket.write(declaredBytes === null ? chunk(body) : body);
  };
  return {
    socket,
    send,
    trickle: (everyMs) => {
      timer = setInterval(() => send(1), everyMs);
    },
    answered: () => received !== "",
    closed,
    destroy: () => socket.destroy(),
  };
}

function chunk(body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n")]);
}

function parseAnswer(text: string): RawAnswer {
  const [head = "", ...rest] = text.split("\r\n\r\n");
  const [statusLine = "", ...lines] = head.split("\r\n");
  const status = /^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1];
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(":");
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return { status: status === undefined ? undefined : Number(status), headers, body: rest.join("\r\n\r\n") };
}
