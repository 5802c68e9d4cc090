import { type Logger, pino } from "pino";
import type { Config } from "../config/schema.js";

/** JSON lines on stdout; `err` objects keep their message and cause, never request bodies. */
export function createLogger(config: Readonly<Config>, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level: config.log.level,
      base: { service: "imgfleet", pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? process.stdout,
  );
}
