import type { FastifyInstance } from "fastify";
import { ProblemError } from "../../errors/problem.js";
import { isProblemCode, PROBLEM_TYPES, problemTypeUri } from "../../errors/problem-types.js";

/** Problem type URIs dereference to a short description (docs/errors.md has the full text). */
export function problemsRoute(app: FastifyInstance) {
  app.get<{ Params: { code: string } }>("/problems/:code", async (request) => {
    const { code } = request.params;
    if (!isProblemCode(code)) throw new ProblemError("not-found", `no problem type '${code}'`);
    return { type: problemTypeUri(code), ...PROBLEM_TYPES[code], docs: `docs/errors.md#${code}` };
  });
}
