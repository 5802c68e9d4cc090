import { CLI_ENV } from "../config/sources.js";
import type { IssuedKey } from "../identity/identity-admin.js";
import { inDoubleQuotes, PACKAGE_ROOT, pathExport } from "./invocation.js";

/** Where the first steps point: the node, its admin key, and a checkout's root as shell text. */
export interface StepPlaces {
  url: string;
  adminKey: string;
  /** Text for inside double quotes: this checkout's escaped path, or `$PWD` in the README. */
  root: string;
}

/**
 * The steps from nothing to a resized image, as shell lines. The README's
 * quick start prints the same lines with `$PWD` for the root (a test keeps
 * them equal); the banner prints this checkout's full path, so they work
 * pasted in any directory and never ask `npx` to fetch a package.
 */
export function firstSteps(places: StepPlaces): string[] {
  return [
    `export ${CLI_ENV.url}=${places.url}`,
    `export ${CLI_ENV.adminKey}=${places.adminKey}`,
    pathExport(`${places.root}/bin`),
    "TENANT=$(imgfleet tenants create acme --quiet)",
    'KEY=$(imgfleet keys create "$TENANT" --scope resize --quiet)',
    'curl -sS -H "Authorization: Bearer $KEY" -H "Content-Type: image/jpeg" \\',
    `  --data-binary "@${places.root}/examples/sample.jpg" \\`,
    `  "$${CLI_ENV.url}/v1/resize?w=400&format=webp" -o sample-400.webp`,
  ];
}

/**
 * What the first start prints, once: the admin key and the steps that take
 * a newcomer from nothing to a resized image. The key's secret is stored
 * nowhere else (only its hash is), so this is the only copy.
 */
export function bootstrapBanner(issued: IssuedKey, url: string): string {
  const steps = firstSteps({
    url,
    adminKey: issued.secret,
    root: inDoubleQuotes(PACKAGE_ROOT),
  });
  const [urlLine, keyLine, pathLine, ...rest] = steps.map((line) => `   ${line}`);
  return `
================================================================================
 imgfleet: first start — an admin key was created. It is shown ONCE; only its
 hash is stored. Keep it somewhere safe (a password manager).

 In another terminal, in any directory: the CLI reads the first two lines, the
 third puts this checkout's imgfleet command on the PATH.

${urlLine}
${keyLine}
${pathLine}

 Create a tenant and an API key for it, then resize an image:

${rest.join("\n")}

 Or sign in to the web console with the admin key: ${url}/console
================================================================================
`;
}
