import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from "fastify";
import { CONSOLE_PATH } from "../../contract/paths.js";
import { ProblemError } from "../../errors/problem.js";

/** Where `npm run build` (vite) writes the console: `dist/console` at the package root. */
export const CONSOLE_DIR = fileURLToPath(new URL("../../../dist/console/", import.meta.url));

export { CONSOLE_PATH };

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/**
 * Everything the page loads comes from this node: no inline script, no
 * other origin. `blob:` images are the playground's original and result;
 * inline styles are CSSOM writes (uPlot, Preact), which `style-src` allows.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Hashed file names (`assets/index-3f2a1b.js`) never change content: cache them for a year. */
const IMMUTABLE = "public, max-age=31536000, immutable";
/** A missing bundle is logged at most this often: each page load asks again. */
const NOT_BUILT_LOG_INTERVAL_MS = 60_000;

/**
 * The web console under `/console`: the static files `vite build` wrote to
 * `dir`, `index.html` for any route of the single-page app (deep links and
 * bookmarks), and a 503 problem naming the fix when the bundle is missing
 * (the directory it looked in goes to the operator's log, never to the caller).
 */
export function consoleRoutes(app: FastifyInstance, options: { dir?: string } = {}): void {
  const root = resolve(options.dir ?? CONSOLE_DIR);
  let notBuiltLoggedAt = Number.NEGATIVE_INFINITY;
  const notBuilt = (log: FastifyBaseLogger) => {
    if (Date.now() - notBuiltLoggedAt < NOT_BUILT_LOG_INTERVAL_MS) return;
    notBuiltLoggedAt = Date.now();
    log.warn(
      { dir: root },
      `the web console is not built: no ${root}${sep}index.html; run \`npm run build\` in the installation`,
    );
  };
  const serve = async (path: string, reply: FastifyReply) => {
    securityHeaders(reply);
    const file = await findFile(root, path);
    if (file) return send(reply, file, path.startsWith("assets/") ? IMMUTABLE : "no-cache");
    // A missing asset is a 404: answering index.html for a script would only confuse the browser.
    if (path.startsWith("assets/") || extname(path) !== "") {
      throw new ProblemError("not-found", `the console has no file ${path}`);
    }
    const index = await findFile(root, "index.html");
    if (!index) {
      notBuilt(reply.log);
      throw new ProblemError(
        "console-not-built",
        "the web console is not built on this node: its operator can run `npm run build` (the node's log says where it looked), then reload",
        { retryAfterS: 60 },
      );
    }
    return send(reply, index, "no-cache");
  };
  app.get(CONSOLE_PATH, (_request, reply) => serve("", reply));
  app.get<{ Params: { "*": string } }>(`${CONSOLE_PATH}/*`, (request, reply) =>
    serve(request.params["*"], reply),
  );
}

function securityHeaders(reply: FastifyReply): void {
  reply.headers({
    "content-security-policy": CONSOLE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
  });
}

/** A regular file under `root` named by a URL path, or null; `..` and the like never leave `root`. */
async function findFile(root: string, path: string): Promise<{ path: string; size: number } | null> {
  if (path === "" || path.includes("\0")) return null;
  const full = resolve(root, path);
  if (!full.startsWith(root + sep)) return null;
  try {
    const s = await stat(full);
    return s.isFile() ? { path: full, size: s.size } : null;
  } catch {
    return null;
  }
}

function send(reply: FastifyReply, file: { path: string; size: number }, cacheControl: string) {
  return reply
    .type(TYPES[extname(file.path)] ?? "application/octet-stream")
    .header("content-length", file.size)
    .header("cache-control", cacheControl)
    .send(createReadStream(file.path));
}
