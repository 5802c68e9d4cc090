import type { z } from "zod";
import { ProblemError } from "../errors/problem.js";

/**
 * Parses a body or query with one of the contract's zod schemas (src/contract); failures
 * become one invalid-body problem listing every field.
 */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => {
    const path = issue.path.join(".");
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  throw new ProblemError("invalid-body", `the ${what} is not valid: ${errors.join("; ")}`, {
    extras: { errors },
  });
}
