import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import { ADMIN_PREFIX, OPENAPI_PATH, PROBLEMS_PREFIX, PUBLIC_PREFIX } from "../src/contract/paths.js";

/**
 * The web console: a single-page app built into dist/console, which every
 * API node serves at /console. Everything it loads is in the bundle (no
 * CDN, no web fonts), so the page makes no request to another origin.
 */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  // Preact's JSX runtime through Vite's own transform: no Babel, no extra plugin.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  resolve: { alias: { react: "preact/compat", "react-dom": "preact/compat" } },
  build: {
    outDir: fileURLToPath(new URL("../dist/console", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // The page's CSP allows no inline script; keep every asset a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    chunkSizeWarningLimit: 300,
  },
  // `npm run dev:console`: the page from Vite, the APIs from a node started with `npm start`.
  server: {
    proxy: Object.fromEntries(
      [ADMIN_PREFIX, PUBLIC_PREFIX, PROBLEMS_PREFIX, OPENAPI_PATH].map((path) => [
        path,
        process.env.IMGFLEET_URL ?? "http://127.0.0.1:8080",
      ]),
    ),
  },
  logLevel: "warn",
});
