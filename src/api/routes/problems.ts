import type { FastifyInstance } from "fastify";
import { PROBLEMS_PREFIX } from "../../contract/paths.js";
import { ProblemError } from "../../errors/problem.js";
import { problemHtml, problemMarkdown } from "../../errors/problem-docs.js";
import { isProblemCode, PROBLEM_TYPES, problemTypeUri } from "../../errors/problem-types.js";

/** What a problem type URI can be served as, in order of preference when the client has none. */
const REPRESENTATIONS = ["text/html", "text/markdown", "application/json"] as const;
type Representation = (typeof REPRESENTATIONS)[number];

/** How much the client's Accept header wants a type: the q of its most specific matching range. */
function quality(accept: string, type: string): number {
  const [major] = type.split("/");
  let best = { specificity: -1, q: 0 };
  for (const range of accept.split(",")) {
    const [name = "", ...params] = range.split(";").map((s) => s.trim().toLowerCase());
    const specificity = name === type ? 2 : name === `${major}/*` ? 1 : name === "*/*" ? 0 : -1;
    if (specificity <= best.specificity) continue;
    const q = Number(params.find((p) => p.startsWith("q="))?.slice(2) ?? "1");
    best = { specificity, q: Number.isFinite(q) ? q : 0 };
  }
  return best.q;
}

/** The representation the Accept header prefers; HTML (for a person) when it has no preference. */
export function chooseRepresentation(accept: string | undefined): Representation {
  if (!accept) return "text/html";
  let chosen: { type: Representation; q: number } = { type: "text/html", q: 0 };
  for (const type of REPRESENTATIONS) {
    const q = quality(accept, type);
    if (q > chosen.q) chosen = { type, q };
  }
  return chosen.type;
}

/**
 * Problem type URIs dereference to their documentation from docs/errors.md:
 * an HTML page for a browser, Markdown for `Accept: text/markdown`, and the
 * registry's entry for `Accept: application/json`.
 */
export function problemsRoute(app: FastifyInstance) {
  app.get<{ Params: { code: string } }>(`${PROBLEMS_PREFIX}/:code`, async (request, reply) => {
    const { code } = request.params;
    if (!isProblemCode(code)) {
      throw new ProblemError("not-found", `no problem type '${code}'; docs/errors.md lists them all`);
    }
    const type = chooseRepresentation(request.headers.accept);
    reply.header("vary", "Accept").header("cache-control", "public, max-age=3600");
    if (type === "application/json") return { type: problemTypeUri(code), ...PROBLEM_TYPES[code] };
    reply.type(`${type}; charset=utf-8`);
    return type === "text/markdown" ? problemMarkdown(code) : problemHtml(code);
  });
}
