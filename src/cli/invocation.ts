import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * How to run this installation's CLI from anywhere. `npm install` puts
 * `imgfleet` on no PATH, and `npx imgfleet` outside the checkout asks the
 * public registry for a package of that name (someone else's code), so every
 * command the CLI prints names this checkout's bin/imgfleet.js by its full
 * path, or comes after a line that puts its directory on the PATH.
 */

/** The checkout's root: two levels above this file, in src/cli and dist/cli alike. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
export const BIN_DIR = join(PACKAGE_ROOT, "bin");
/** bin/imgfleet is a link to bin/imgfleet.js, so a PATH lookup finds the command by its own name. */
export const BIN = join(BIN_DIR, "imgfleet.js");

/** A word for a POSIX shell: bare when it is plain, else in single quotes. */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Text escaped to go inside double quotes, beside `$VARIABLES` in the same word. */
export function inDoubleQuotes(text: string): string {
  return text.replace(/["$`\\]/g, "\\$&");
}

/** `imgfleet <args>` as a command that works as printed in any directory. */
export function cliCommand(args: string): string {
  return `${shellWord(BIN)} ${args}`;
}

/**
 * The line that makes a bare `imgfleet` work in this shell, wherever it
 * is. `binDir` is shell text for inside double quotes (`$PWD/bin` in the
 * README); by default this checkout's bin/ directory.
 */
export function pathExport(binDir: string = inDoubleQuotes(BIN_DIR)): string {
  return `export PATH="${binDir}:$PATH"`;
}
