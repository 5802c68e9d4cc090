const SECRET_KEY = /secret|password|token|credential|apikey|privatekey|(^|_)key$/i;
export const REDACTED = "[redacted]";

/** A copy of the config fit to print or ship in a support report: secrets replaced, URLs stripped of passwords. */
export function redact(value: unknown, key = ""): unknown {
  if (SECRET_KEY.test(key) && typeof value === "object" && value !== null) return REDACTED;
  if (Array.isArray(value)) return value.map((v) => redact(v, key));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  if (SECRET_KEY.test(key) && value !== undefined && value !== "") return REDACTED;
  if (typeof value === "string") return value.replace(/(\w+:\/\/[^:/@\s]*):[^@/\s]+@/g, `$1:${REDACTED}@`);
  return value;
}
