import { mkdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * One process per data directory: PGlite has no locking of its own, and two
 * processes writing the same files would corrupt them.
 *
 * The lock is a listening Unix-domain socket, because Node has no flock and
 * the kernel closes a socket the moment its process dies, SIGKILL included,
 * before the process is even reaped. A pid file cannot tell: a killed process
 * not yet reaped still answers kill(pid, 0), and after a reboot its pid may
 * name any unrelated process.
 *
 * On Linux the socket lives in the abstract namespace, named after the
 * directory's device and inode (so every path to it, symlinks and bind mounts
 * included, names one lock); binding it is atomic and leaves no file behind.
 * Elsewhere it is a socket file in the directory: a live holder accepts a
 * connection, a dead one's file refuses it (ECONNREFUSED) and is replaced.
 * The holder answers each connection with its pid, for the refusal's message.
 * An abstract name belongs to a network namespace: two containers with their
 * own network namespaces sharing one volume do not see each other's lock (a
 * pid file could not tell across pid namespaces either).
 * `imgfleet.pid` is still written, for people and scripts; it is never read.
 */
export async function lockDataDir(
  dataDir: string,
  platform: NodeJS.Platform = process.platform,
): Promise<() => Promise<void>> {
  mkdirSync(dataDir, { recursive: true });
  const address = lockAddress(dataDir, platform);
  const held = heldHere.get(address);
  // A second node of this very process (tests): its own lock, counted.
  if (held) return held.share();
  const server = await bindLock(dataDir, address);
  const lock = new HeldLock(address, server, join(dataDir, "imgfleet.pid"));
  heldHere.set(address, lock);
  return lock.share();
}

/** Socket paths are limited to about 104 bytes (sun_path); past that the socket file goes to the temp directory. */
const MAX_SOCKET_PATH = 100;

/** The lock's socket address for this directory. */
function lockAddress(dataDir: string, platform: NodeJS.Platform): string {
  const { dev, ino } = statSync(dataDir, { bigint: true });
  const name = `imgfleet-data-dir-${dev.toString(16)}-${ino.toString(16)}`;
  if (platform === "linux") return `\0${name}`;
  const inDir = join(dataDir, "imgfleet.lock");
  return Buffer.byteLength(inDir) <= MAX_SOCKET_PATH ? inDir : join(tmpdir(), `${name}.lock`);
}

/** Locks this process holds, by address, so that a second node in it shares rather than refuses. */
const heldHere = new Map<string, HeldLock>();

class HeldLock {
  private holders = 0;

  constructor(
    private readonly address: string,
    private readonly server: Server,
    private readonly pidFile: string,
  ) {
    writeFileSync(pidFile, String(process.pid));
  }

  share(): () => Promise<void> {
    this.holders += 1;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      this.holders -= 1;
      if (this.holders === 0) await this.close();
    };
  }

  private async close(): Promise<void> {
    heldHere.delete(this.address);
    rmSync(this.pidFile, { force: true });
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A few tries: a holder dying between our bind and our connect frees the lock for the next bind. */
const BIND_ATTEMPTS = 3;

async function bindLock(dataDir: string, address: string): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    const bound = await tryBind(address);
    if (bound) return bound;
    const holder = await askHolder(address);
    if (holder.alive) {
      const pid = holder.pid === null ? "" : ` (pid ${holder.pid})`;
      throw new Error(
        `the data directory ${dataDir} is in use by another imgfleet${pid}; stop it or start this one with another --data-dir`,
      );
    }
    // A socket file left by a process that died (not on Linux, where the name goes with the process).
    if (!address.startsWith("\0")) unlinkSync(address);
    if (attempt >= BIND_ATTEMPTS) throw new Error(`could not lock the data directory ${dataDir}`);
  }
}

/** Listens on the address; null when something else holds it. */
function tryBind(address: string): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.end(`${process.pid}\n`));
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve(null);
      else reject(error);
    });
    server.listen(address, () => {
      // The lock must not keep a process alive on its own: the stop stack closes it.
      server.unref();
      resolve(server);
    });
  });
}

/** Whether a live process holds the address, and its pid as it says. */
function askHolder(address: string): Promise<{ alive: boolean; pid: number | null }> {
  return new Promise((resolve) => {
    let said = "";
    const socket = connect(address);
    socket.setEncoding("utf8");
    socket.setTimeout(2000, () => socket.destroy());
    socket.on("data", (chunk: string) => {
      said += chunk;
    });
    socket.on("close", () => {
      const pid = Number(said.trim());
      resolve({ alive: true, pid: Number.isInteger(pid) && pid > 0 ? pid : null });
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // Refused: nobody listens; the name or file is stale. Any other error: assume a holder.
      socket.removeAllListeners("close");
      resolve({ alive: !(error.code === "ECONNREFUSED" || error.code === "ENOENT"), pid: null });
    });
  });
}
