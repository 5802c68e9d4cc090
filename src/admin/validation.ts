import { z } from "zod";
import { ProblemError } from "../errors/problem.js";
import { TENANT_SCOPES } from "../identity/model.js";
import { OUTPUT_FORMATS } from "../image/formats.js";

/** Parses a body or query with a zod schema; failures become one invalid-body problem listing every field. */
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

const limits = {
  ratePerSecond: z.number().positive().max(100_000),
  burst: z.number().int().min(1).max(1_000_000),
  maxInFlight: z.number().int().min(1).max(100_000),
  maxInputBytes: z
    .number()
    .int()
    .min(1024)
    .max(2 ** 31 - 1)
    .nullable(),
  outputFormats: z
    .array(z.enum(OUTPUT_FORMATS))
    .min(1, "name at least one format, or null for all")
    .transform((v) => [...new Set(v)])
    .nullable(),
};

/** Names end up in tables and terminals: no control characters (escape sequences). */
const printable = (v: string) => ![...v].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127);

const tenantName = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(100, "must be at most 100 characters")
  .refine(printable, "must not contain control characters");

const keyName = z
  .string()
  .trim()
  .max(100)
  .refine(printable, "must not contain control characters")
  .default("");

export const NewTenantBody = z.object({ name: tenantName, ...partial(limits) }).strict();

export const TenantPatchBody = z
  .object({ name: tenantName, status: z.enum(["active", "suspended"]), ...limits })
  .partial()
  .strict()
  .refine((v) => Object.keys(v).length > 0, "name at least one field to change");

const futureDate = z.iso
  .datetime({ offset: true, message: "must be an ISO 8601 date-time such as 2027-01-31T00:00:00Z" })
  .transform((v) => new Date(v))
  .refine((d) => d.getTime() > Date.now(), "must be in the future");

export const NewKeyBody = z
  .object({
    name: keyName,
    scopes: z
      .array(z.enum(TENANT_SCOPES))
      .min(1)
      .transform((v) => [...new Set(v)])
      .default(["resize"]),
    expiresAt: futureDate.nullable().default(null),
  })
  .strict();

export const NewAdminKeyBody = z
  .object({ name: keyName, expiresAt: futureDate.nullable().default(null) })
  .strict();

export const RotateBody = z
  .object({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(90 * 86_400)
      .optional(),
  })
  .strict();

const booleanText = z.enum(["true", "false"]).transform((v) => v === "true");
const limitText = z.coerce.number().int().min(1).max(1000).default(100);

export const TenantListQuery = z
  .object({
    search: z.string().max(100).optional(),
    status: z.enum(["active", "suspended", "deleted"]).optional(),
    includeDeleted: booleanText.default(false),
    after: z.string().max(64).optional(),
    limit: limitText,
  })
  .strict();

export const KeyListQuery = z.object({ includeRevoked: booleanText.default(false) }).strict();

export const AuditQueryText = z
  .object({
    tenant: z.string().max(64).optional(),
    actor: z.string().max(64).optional(),
    action: z.string().max(64).optional(),
    since: z.iso
      .datetime({ offset: true })
      .transform((v) => new Date(v))
      .optional(),
    before: z.string().max(64).optional(),
    limit: limitText,
  })
  .strict();

function partial<T extends Record<string, z.ZodType>>(shape: T): { [K in keyof T]: z.ZodOptional<T[K]> } {
  return Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, v.optional()])) as {
    [K in keyof T]: z.ZodOptional<T[K]>;
  };
}

export const DeadLetterQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(1000).default(100) })
  .strict();
