import { type Command, type CommanderError, InvalidArgumentError, Option } from "commander";
import { CLI_ENV } from "../../config/sources.js";
import { cliCommand } from "../invocation.js";
import { AdminClient, AdminClientError, EXIT } from "./client.js";
import { DurationError, parseDuration, parseInstant } from "./durations.js";

/** The flags every admin command takes: where the node is, the key, the timeout, the output. */
export interface ConnectionFlags {
  url: string;
  adminKey?: string;
  timeout: number;
  json?: boolean;
  quiet?: boolean;
}

export const DEFAULT_URL = "http://127.0.0.1:8080";
const DEFAULT_TIMEOUT_MS = 10_000;

/** A mistake in how the command was called: exit 2, like commander's own usage errors. */
export class UsageError extends AdminClientError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

export function connectionOptions(command: Command): Command {
  return command
    .addOption(new Option("--url <url>", "the node's URL").env(CLI_ENV.url).default(DEFAULT_URL))
    .addOption(
      // The environment is the better place for a secret: flags show up in `ps` and shell history.
      new Option("--admin-key <key>", `an admin key (better: set ${CLI_ENV.adminKey})`).env(CLI_ENV.adminKey),
    )
    .addOption(
      new Option("--timeout <ms>", "give up on the node after this many milliseconds")
        .argParser(positiveInt)
        .default(DEFAULT_TIMEOUT_MS),
    )
    .option("--json", "print the API's JSON instead of a table (lists as an array)")
    .addOption(
      new Option("-q, --quiet", "print only the id (for a new key: its secret), one per line").conflicts(
        "json",
      ),
    );
}

export function clientFrom(flags: ConnectionFlags): AdminClient {
  const key = flags.adminKey?.trim();
  if (!key) {
    throw new UsageError(
      `no admin key: set ${CLI_ENV.adminKey} (or pass --admin-key). The first start of a node printed one; \`${cliCommand("admin-keys create")}\` makes more.`,
    );
  }
  // Keys are printable ASCII; anything else (a space, a pasted line break) could not be sent in a header anyway.
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new UsageError(
      "the admin key has spaces or characters no key has; copy it again from where it was shown",
    );
  }
  return new AdminClient({ url: checkedUrl(flags.url), adminKey: key, timeoutMs: flags.timeout });
}

function checkedUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url '${text}' is not a URL; expected something like ${DEFAULT_URL}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--url '${text}' must be an http:// or https:// URL`);
  }
  return text;
}

/**
 * Makes commander's usage errors (unknown option, missing argument, bad
 * choice) exit 2 instead of its default 1, so scripts can tell "called
 * wrongly" from "the node said no". Subcommands made afterwards inherit it.
 */
export function usageExitCodes(command: Command): Command {
  return command.exitOverride((error: CommanderError) => {
    process.exit(error.exitCode === 0 ? 0 : EXIT.usage);
  });
}

/**
 * Wraps an action: expected failures print `imgfleet: <message>` on stderr
 * and set the exit code; anything else is a bug and goes to main's handler
 * with its stack. The process then ends on its own, after stdout drains.
 */
export function run<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (error) {
      if (!(error instanceof AdminClientError)) throw error;
      process.stderr.write(`imgfleet: ${error.message}\n`);
      process.exitCode = error.exitCode;
    }
  };
}

/**
 * One result in the form asked for: the API's JSON (`--json`), bare ids for
 * `$(…)` in shell scripts (`--quiet`), or the table for a person.
 */
export function emit(
  flags: ConnectionFlags,
  out: { json: unknown; quiet: string[]; table: () => string },
): void {
  if (flags.json) process.stdout.write(`${JSON.stringify(out.json, null, 2)}\n`);
  else if (flags.quiet) process.stdout.write(out.quiet.map((line) => `${line}\n`).join(""));
  else process.stdout.write(out.table());
}

// Argument parsers: commander reports their InvalidArgumentError with the flag's name, as a usage error.

export function positiveInt(text: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("expected a whole number of at least 1");
  }
  return n;
}

/** Any number: the node checks the range and says which field broke it, so the rules live in one place. */
export function number(text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
}

export function duration(text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof DurationError ? error.message : String(error));
  }
}

export function instant(text: string): string {
  return instantOr(text, false);
}

/** `--since 24h` or a date-time. */
export function instantOrAgo(text: string): string {
  return instantOr(text, true);
}

function instantOr(text: string, orAgo: boolean): string {
  try {
    return parseInstant(text, orAgo);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof DurationError ? error.message : String(error));
  }
}

/** For repeatable flags that also take commas: `--scope resize --scope jobs` or `--scope resize,jobs`. */
export function collect(text: string, previous: string[] = []): string[] {
  return [...previous, ...list(text)];
}

export function list(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}
