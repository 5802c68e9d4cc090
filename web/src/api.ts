import type { SessionView } from "../../src/contract/admin.js";
import type { Problem as ProblemDocument } from "../../src/contract/common.js";
import { ADMIN_PREFIX } from "../../src/contract/paths.js";

/**
 * The console's only way to the server: the admin API under /admin/v1 (the
 * same one the CLI uses), authenticated by the session cookie, with the
 * session's CSRF token on every write. Problems come back as ApiError with
 * the problem+json document, so pages can show its detail.
 */

export const ADMIN = ADMIN_PREFIX;

/**
 * The problem+json document (the contract's), any member possibly missing
 * (the page makes its own when the node does not answer), plus the `reason`
 * a session problem carries.
 */
export type Problem = Partial<Pick<ProblemDocument, "type" | "title" | "status" | "detail" | "errors">> & {
  reason?: string;
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
}

export type { SessionView };

type Listener = (problem: Problem) => void;

let csrfToken: string | null = null;
let onEnded: Listener = () => {};

/** Called when the server says the session ended (or there is none): the app shows sign-in. */
export function onSessionEnded(listener: Listener): void {
  onEnded = listener;
}

export function setSession(session: SessionView | null): void {
  csrfToken = session?.csrfToken ?? null;
}

export interface CallOptions {
  /** An automatic refresh: it does not count as activity for the idle timeout. */
  poll?: boolean;
  /** Ask for text (CSV, Markdown) instead of JSON. */
  text?: boolean;
}

export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  options: CallOptions = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["x-csrf-token"] = csrfToken;
  if (options.poll) headers["x-console-poll"] = "1";
  let response: Response;
  try {
    response = await fetch(`${ADMIN}${path}`, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, {
      title: "The node did not answer",
      detail: `${(error as Error).message}: check that the node is running and reachable`,
    });
  }
  if (!response.ok) {
    const problem = await readProblem(response);
    const ended =
      response.status === 401 &&
      (problem.type === "/problems/session-expired" || problem.type === "/problems/unauthenticated");
    if (ended && !path.startsWith("/session")) onEnded(problem);
    throw new ApiError(response.status, problem);
  }
  if (response.status === 204) return undefined as T;
  return (options.text ? await response.text() : await response.json()) as T;
}

export async function readProblem(response: Response): Promise<Problem> {
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      return (await response.json()) as Problem;
    } catch {
      // fall through to the generic problem
    }
  }
  return { status: response.status, title: response.statusText || `HTTP ${response.status}` };
}

export const get = <T>(path: string, options?: CallOptions) => api<T>("GET", path, undefined, options);
export const post = <T>(path: string, body: unknown = {}) => api<T>("POST", path, body);
export const put = <T>(path: string, body: unknown) => api<T>("PUT", path, body);
export const patch = <T>(path: string, body: unknown) => api<T>("PATCH", path, body);
export const del = <T>(path: string) => api<T>("DELETE", path);

/** `?a=1&b=x` from the defined values. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : "";
}
