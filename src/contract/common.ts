import { z } from "zod";

/**
 * Building blocks shared by the admin and public contracts. A schema given
 * an `id` (`.meta({ id })`) becomes one named component of the OpenAPI
 * document instead of being repeated inline.
 */

/** An instant as every answer writes it: ISO 8601 in UTC (`Date#toISOString`). */
export const Timestamp = z.iso.datetime().meta({ id: "Timestamp", description: "ISO 8601 date-time, UTC" });

/** An RFC 9457 problem document: every error answer of every route, as `application/problem+json`. */
export const Problem = z
  .looseObject({
    type: z.string().meta({ description: "`/problems/<code>`: dereference it for the code's description" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().meta({ description: "What was wrong and what to do, for the caller" }),
    instance: z.string().optional(),
    errors: z
      .array(z.string())
      .optional()
      .meta({ description: "Invalid input: one `field: problem` line each" }),
  })
  .meta({ id: "Problem", description: "RFC 9457 problem details, with extra members per problem type" });
export type Problem = z.infer<typeof Problem>;

/** One page of a list, newest first, and the cursor of the next page (null at the end). */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next: z.string().nullable() });
}
/** A page as the clients read it. */
export type Page<T> = { items: T[]; next: string | null };

/** A whole list in one answer. */
export function listOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item) });
}

/**
 * Characters a name must not hold: C0 and C1 controls (terminal escape
 * sequences), line and paragraph separators, lone surrogates, and invisible
 * format characters, among them the bidirectional overrides, embeddings,
 * isolates and marks that reorder what is shown around them. The zero width
 * (non-)joiners stay: Persian words and emoji sequences need them.
 */
const HIDDEN_OR_CONTROL = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}]|(?![\u200C\u200D])\p{Cf}/u;

/** Names end up in tables, logs, terminals and the console: nothing that controls or hides text. */
export const printable = (v: string) => !HIDDEN_OR_CONTROL.test(v);

/** `limit` of a list: 1 to 1000, 100 when absent. */
export const limitText = z.coerce.number().int().min(1).max(1000).default(100);

/** `true`/`false` in a query string. */
export const booleanText = z.enum(["true", "false"]).transform((v) => v === "true");

/** A keyset cursor (`before`, `after`): an id from a previous page. */
export const cursorText = z.string().max(64);

/** Free-form JSON details (audit entries, events): an object whose members depend on the kind. */
export const Details = z.record(z.string(), z.unknown());

/**
 * What a client puts in a query string for a parsed query: each parameter
 * optional, as its parsed value (booleans, numbers) or, for instants, as text.
 */
export type QueryInput<S extends z.ZodType> = {
  [K in keyof z.output<S>]?: Exclude<z.output<S>[K], undefined> extends Date ? string : z.output<S>[K];
};
