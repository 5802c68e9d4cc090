import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import type {
  Alert,
  AlertQuery,
  ApiKey,
  AuditEntry,
  AuditQuery,
  ChannelView,
  DeadLetter,
  DeadLetterQuery,
  DeliveryResult,
  EventsQuery,
  FlagEvaluation,
  FlagSettingsBody,
  FlagView,
  FleetNode,
  IssuedKey,
  MetricsOverview,
  NewAdminKeyBody,
  NewKeyBody,
  NewTenantBody,
  OpsEvent,
  RotatedKey,
  SeriesHistory,
  SeriesQuery,
  Tenant,
  TenantListQuery as TenantListQuerySchema,
  TenantPatchBody,
} from "../../contract/admin.js";
import type { Page, Problem as ProblemDocument, QueryInput } from "../../contract/common.js";
import { ADMIN_PREFIX } from "../../contract/paths.js";
import type {
  AdminCostQuery,
  AdminUsageQuery,
  CostEstimate,
  CostSummary,
  UsageReport,
} from "../../contract/usage.js";

// Every request and answer type is the API contract's (src/contract): the server validates
// with the same schemas, so a change to the admin API's shapes breaks this file's build.
export type {
  Alert,
  ApiKey,
  AuditEntry,
  ChannelView,
  CostEstimate,
  CostSummary,
  DeadLetter,
  DeliveryResult,
  FlagView,
  FleetNode,
  IssuedKey,
  MetricsOverview,
  OpsEvent,
  Page,
  RotatedKey,
  SeriesHistory,
  Tenant,
  UsageReport,
};

/** PUT /admin/v1/flags/:name: the fields to change. */
export type FlagSettingsInput = z.input<typeof FlagSettingsBody>;
/** GET /admin/v1/flags/:name?tenant=: how the answering node evaluates the flag for that tenant. */
export type FlagEvaluationView = FlagEvaluation;
export type NewTenantInput = z.input<typeof NewTenantBody>;
/** A tenant's limits as given to create or change it; null resets one to the node's own. */
export type TenantLimitsInput = Omit<NewTenantInput, "name">;
export type TenantPatchInput = z.input<typeof TenantPatchBody>;
export type TenantListQuery = QueryInput<typeof TenantListQuerySchema>;
export type NewKeyInput = z.input<typeof NewKeyBody>;
export type NewAdminKeyInput = z.input<typeof NewAdminKeyBody>;
export type AuditListQuery = QueryInput<typeof AuditQuery>;
/** `format` is the client's to choose (usageCsv). */
export type UsageQuery = Omit<QueryInput<typeof AdminUsageQuery>, "format">;
export type CostQuery = QueryInput<typeof AdminCostQuery>;

/** The CLI's exit codes: scripts branch on these, so they never change meaning. */
export const EXIT = { failed: 1, usage: 2, unreachable: 3, unauthorized: 4 } as const;

/** An RFC 9457 problem document as the CLI reads it: any member may be missing from a stranger's answer. */
export type Problem = Partial<Pick<ProblemDocument, "type" | "title" | "status" | "detail" | "errors">>;

/** Anything the CLI reports instead of a result; `exitCode` is what the process exits with. */
export class AdminClientError extends Error {
  override readonly name = "AdminClientError";
  constructor(
    message: string,
    readonly exitCode: number,
    readonly problem?: Problem,
  ) {
    super(message);
  }
}

export interface AdminClientOptions {
  /** The node's base URL, e.g. http://127.0.0.1:8080 (a path prefix behind a proxy is kept). */
  url: string;
  adminKey: string;
  timeoutMs: number;
}

type Query = Record<string, string | number | boolean | undefined>;

interface Call {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Query;
  body?: unknown;
  /** Ask for this media type and return the body as text (JSON otherwise). */
  text?: string;
}

/** Connection failures worth one more try for a read: the server or a proxy dropped an idle socket. */
const RESET_CODES = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  UND_ERR_SOCKET: "the connection was closed",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
};

/**
 * Typed calls to a node's admin API over HTTP, so the CLI works against any
 * node of a fleet. Every call has a timeout; writes are never retried (a
 * retried create could make two tenants), reads are retried once on a
 * connection reset.
 */
export class AdminClient {
  readonly #base: string;

  constructor(private readonly options: AdminClientOptions) {
    this.#base = options.url.replace(/\/+$/, "");
  }

  createTenant(body: NewTenantInput): Promise<Tenant> {
    return this.#call({ method: "POST", path: "/tenants", body });
  }

  listTenants(query: TenantListQuery = {}): Promise<Page<Tenant>> {
    return this.#call({ method: "GET", path: "/tenants", query: { ...query } });
  }

  /** Every tenant the query matches, following `next` cursors page by page. */
  async listAllTenants(query: TenantListQuery = {}): Promise<Tenant[]> {
    const all: Tenant[] = [];
    let after = query.after;
    for (;;) {
      const page = await this.listTenants({ ...query, after });
      all.push(...page.items);
      // A cursor that does not move would loop forever; stop rather than trust it.
      if (page.next === null || page.next === after || page.items.length === 0) return all;
      after = page.next;
    }
  }

  getTenant(id: string): Promise<Tenant> {
    return this.#call({ method: "GET", path: `/tenants/${seg(id)}` });
  }

  updateTenant(id: string, patch: TenantPatchInput): Promise<Tenant> {
    return this.#call({ method: "PATCH", path: `/tenants/${seg(id)}`, body: patch });
  }

  suspendTenant(id: string): Promise<Tenant> {
    return this.#call({ method: "POST", path: `/tenants/${seg(id)}/suspend` });
  }

  resumeTenant(id: string): Promise<Tenant> {
    return this.#call({ method: "POST", path: `/tenants/${seg(id)}/resume` });
  }

  deleteTenant(id: string): Promise<Tenant> {
    return this.#call({ method: "DELETE", path: `/tenants/${seg(id)}` });
  }

  createKey(tenantId: string, body: NewKeyInput): Promise<IssuedKey> {
    return this.#call({ method: "POST", path: `/tenants/${seg(tenantId)}/keys`, body });
  }

  listKeys(tenantId: string, includeRevoked = false): Promise<Page<ApiKey>> {
    return this.#call({ method: "GET", path: `/tenants/${seg(tenantId)}/keys`, query: { includeRevoked } });
  }

  revokeKey(tenantId: string, keyId: string): Promise<ApiKey> {
    return this.#call({ method: "POST", path: `/tenants/${seg(tenantId)}/keys/${seg(keyId)}/revoke` });
  }

  /** Without `graceSeconds`, the node's configured grace applies. */
  rotateKey(tenantId: string, keyId: string, graceSeconds?: number): Promise<RotatedKey> {
    return this.#call({
      method: "POST",
      path: `/tenants/${seg(tenantId)}/keys/${seg(keyId)}/rotate`,
      body: graceSeconds === undefined ? {} : { graceSeconds },
    });
  }

  createAdminKey(body: NewAdminKeyInput): Promise<IssuedKey> {
    return this.#call({ method: "POST", path: "/admin-keys", body });
  }

  listAdminKeys(includeRevoked = false): Promise<Page<ApiKey>> {
    return this.#call({ method: "GET", path: "/admin-keys", query: { includeRevoked } });
  }

  revokeAdminKey(keyId: string): Promise<ApiKey> {
    return this.#call({ method: "POST", path: `/admin-keys/${seg(keyId)}/revoke` });
  }

  listAudit(query: AuditListQuery = {}): Promise<Page<AuditEntry>> {
    return this.#call({ method: "GET", path: "/audit", query: { ...query } });
  }

  usage(query: UsageQuery = {}): Promise<UsageReport> {
    return this.#call({ method: "GET", path: "/usage", query: { ...query } });
  }

  /** The same report as CSV text, as the node writes it. */
  usageCsv(query: UsageQuery = {}): Promise<string> {
    return this.#call({
      method: "GET",
      path: "/usage",
      query: { ...query, format: "csv" },
      text: "text/csv",
    });
  }

  /** One tenant's estimate when `tenant` is given, otherwise every tenant's with a grand total. */
  usageCost(query: CostQuery & { tenant: string }): Promise<CostEstimate>;
  usageCost(query?: CostQuery): Promise<CostEstimate | CostSummary>;
  usageCost(query: CostQuery = {}): Promise<CostEstimate | CostSummary> {
    return this.#call({ method: "GET", path: "/usage/cost", query: { ...query } });
  }

  /** Every live node of the fleet, from discovery. */
  nodes(): Promise<{ items: FleetNode[] }> {
    return this.#call({ method: "GET", path: "/nodes" });
  }

  /** Jobs given up for good, newest first. */
  deadLetters(query: QueryInput<typeof DeadLetterQuery> = {}): Promise<{ items: DeadLetter[] }> {
    return this.#call({ method: "GET", path: "/dead-letters", query: { ...query } });
  }

  flags(): Promise<{ items: FlagView[] }> {
    return this.#call({ method: "GET", path: "/flags" });
  }

  flag(name: string): Promise<FlagView> {
    return this.#call({ method: "GET", path: `/flags/${seg(name)}` });
  }

  evaluateFlag(name: string, tenant: string): Promise<FlagEvaluationView> {
    return this.#call({ method: "GET", path: `/flags/${seg(name)}`, query: { tenant } });
  }

  setFlag(name: string, body: FlagSettingsInput): Promise<FlagView> {
    return this.#call({ method: "PUT", path: `/flags/${seg(name)}`, body });
  }

  setFlagTenant(name: string, tenantId: string, enabled: boolean): Promise<FlagView> {
    return this.#call({
      method: "PUT",
      path: `/flags/${seg(name)}/tenants/${seg(tenantId)}`,
      body: { enabled },
    });
  }

  unsetFlagTenant(name: string, tenantId: string): Promise<FlagView> {
    return this.#call({ method: "DELETE", path: `/flags/${seg(name)}/tenants/${seg(tenantId)}` });
  }

  deleteFlag(name: string): Promise<FlagView> {
    return this.#call({ method: "DELETE", path: `/flags/${seg(name)}` });
  }

  /** The support report, as Markdown. */
  report(): Promise<string> {
    return this.#call({ method: "GET", path: "/report", text: "text/markdown" });
  }

  listAlerts(query: QueryInput<typeof AlertQuery> = {}): Promise<Page<Alert>> {
    return this.#call({ method: "GET", path: "/alerts", query: { ...query } });
  }

  ackAlert(id: string): Promise<Alert> {
    return this.#call({ method: "POST", path: `/alerts/${seg(id)}/ack` });
  }

  /** A test notification to one channel (id or name) or to every channel; how each delivery went. */
  testNotification(channel?: string): Promise<{ items: DeliveryResult[] }> {
    const path = channel ? `/notification-channels/${seg(channel)}/test` : "/notification-channels/test";
    return this.#call({ method: "POST", path });
  }

  notificationChannels(): Promise<{ items: ChannelView[] }> {
    return this.#call({ method: "GET", path: "/notification-channels" });
  }

  listEvents(query: QueryInput<typeof EventsQuery> = {}): Promise<Page<OpsEvent>> {
    return this.#call({ method: "GET", path: "/events", query: { ...query } });
  }

  /** Every series now, with baselines, per node, and a sentence. */
  metrics(): Promise<MetricsOverview> {
    return this.#call({ method: "GET", path: "/metrics" });
  }

  /** One series' points (the fleet's without `node`) and its baseline band. */
  metric(series: string, query: z.input<typeof SeriesQuery> = {}): Promise<SeriesHistory> {
    return this.#call({ method: "GET", path: `/metrics/${seg(series)}`, query: { ...query } });
  }

  async #call<T>(call: Call): Promise<T> {
    const url = this.#url(call);
    try {
      return await this.#once<T>(call, url);
    } catch (error) {
      if (call.method !== "GET" || !RESET_CODES.has(networkCode(error) ?? "")) {
        throw this.#explain(error, url);
      }
      // Jittered, so a fleet of scripts hitting a restarting node do not retry in lockstep.
      await sleep(100 + Math.random() * 200);
      return this.#once<T>(call, url).catch((again: unknown) => {
        throw this.#explain(again, url);
      });
    }
  }

  async #once<T>(call: Call, url: string): Promise<T> {
    const hasBody = call.body !== undefined;
    const deadline = refTimeout(this.options.timeoutMs);
    try {
      const response = await fetch(url, {
        method: call.method,
        // One signal for the whole exchange, so a node that sends headers and then stalls still times out.
        signal: deadline.signal,
        headers: {
          authorization: `Bearer ${this.options.adminKey}`,
          accept: call.text
            ? `${call.text}, application/problem+json`
            : "application/json, application/problem+json",
          "user-agent": "imgfleet-cli",
          // No content-type without a body: the node refuses an empty JSON body.
          ...(hasBody ? { "content-type": "application/json" } : {}),
        },
        body: hasBody ? JSON.stringify(call.body) : undefined,
      });
      const text = await response.text();
      if (call.text && response.ok) return text as T;
      const json = parseJson(text);
      if (response.ok && json !== undefined) return json as T;
      throw answerError(response, json, `${call.method} ${url}`);
    } finally {
      deadline.clear();
    }
  }

  #url(call: Call): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.size > 0 ? `?${params}` : "";
    return `${this.#base}${ADMIN_PREFIX}${call.path}${qs}`;
  }

  /** Network and timeout failures as a message an operator can act on; answers pass through. */
  #explain(error: unknown, url: string): unknown {
    if (error instanceof AdminClientError) return error;
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
      return new AdminClientError(
        `${this.#base} did not answer within ${this.options.timeoutMs} ms — the node may be overloaded or stuck; check its logs, or raise --timeout`,
        EXIT.unreachable,
      );
    }
    const code = networkCode(error);
    // fetch reports every connection failure as this TypeError; other TypeErrors are bugs, with their stack.
    if ((error instanceof TypeError && error.message === "fetch failed") || code !== undefined) {
      const reason = (code && NETWORK_REASONS[code]) ?? code ?? causeMessage(error);
      return new AdminClientError(
        `cannot reach ${this.#base}: ${reason} — is a node running? set --url or IMGFLEET_URL`,
        EXIT.unreachable,
      );
    }
    return error instanceof Error ? error : new Error(`${url}: ${String(error)}`);
  }
}

/**
 * Like AbortSignal.timeout, but its timer holds the process open. With an
 * unref'd timer, a socket the server closes at once leaves fetch with no
 * handle in the event loop for a moment, and Node exits — with status 0 and
 * no output, as if the command had worked (seen on Node 20.20).
 */
function refTimeout(ms: number): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")),
    ms,
  );
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Ids go into paths; encoding keeps a stray `/` or `?` from addressing another resource. */
function seg(id: string): string {
  return encodeURIComponent(id);
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A non-2xx answer (or a 2xx that is not JSON) as an error with the right exit code. */
function answerError(response: Response, json: unknown, what: string): AdminClientError {
  const problem = asProblem(json);
  if (!problem) {
    const type = response.headers.get("content-type") ?? "no content type";
    return new AdminClientError(
      `unexpected answer to ${what}: HTTP ${response.status} ${response.statusText} (${type}) — is --url an imgfleet node?`,
      EXIT.failed,
    );
  }
  const lines = [`${problem.title ?? `HTTP ${response.status}`}: ${detailWithoutErrors(problem)}`];
  for (const e of problem.errors ?? []) lines.push(`  - ${e}${flagHint(e)}`);
  const retryAfter = response.headers.get("retry-after");
  if (retryAfter && response.status >= 500) lines.push(`the node asks to retry after ${retryAfter} s`);
  if (response.status === 401 || response.status === 403) {
    lines.push(
      "hint: the admin key was refused — check --admin-key or IMGFLEET_ADMIN_KEY (it may be mistyped, revoked, expired, or a tenant's key)",
    );
    return new AdminClientError(lines.join("\n"), EXIT.unauthorized, problem);
  }
  return new AdminClientError(lines.join("\n"), EXIT.failed, problem);
}

/**
 * The node's detail for an invalid body ends with its errors joined by "; ";
 * they are listed one per line below it, so they are cut from the detail
 * rather than printed twice.
 */
function detailWithoutErrors(problem: Problem): string {
  const detail = problem.detail ?? "(no detail)";
  const joined = (problem.errors ?? []).join("; ");
  if (joined === "" || !detail.endsWith(joined) || detail.length === joined.length) return detail;
  return detail.slice(0, -joined.length).replace(/[\s:;]+$/, "");
}

/**
 * The admin API names fields as in its JSON; the operator typed flags. The
 * CLI sends only these fields, so each error maps back to the flag to fix.
 */
const FIELD_FLAGS: Record<string, string> = {
  name: "--name",
  ratePerSecond: "--rate",
  burst: "--burst",
  maxInFlight: "--max-in-flight",
  maxInputBytes: "--max-input-bytes",
  outputFormats: "--formats",
  status: "--status",
  scopes: "--scope",
  expiresAt: "--expires-in/--expires-at",
  graceSeconds: "--grace",
  search: "--search",
  since: "--since",
  node: "--node",
  limit: "--limit",
  tenant: "--tenant",
  from: "--from",
  to: "--to",
  granularity: "--granularity",
  by: "--by-outcome",
  month: "--month",
  percentage: "--percentage",
  default: "--default",
  description: "--description",
  enabled: "--on/--off",
};

/** `burst: Too small…` → ` (--burst)`; errors of no known field get nothing. */
function flagHint(error: string): string {
  const field = /^([A-Za-z]+)[.:]/.exec(error)?.[1];
  const flag = field === undefined ? undefined : FIELD_FLAGS[field];
  return flag ? ` (${flag})` : "";
}

function asProblem(json: unknown): Problem | undefined {
  if (typeof json !== "object" || json === null) return undefined;
  const p = json as Record<string, unknown>;
  if (typeof p.title !== "string" && typeof p.detail !== "string") return undefined;
  const errors = Array.isArray(p.errors) ? p.errors.filter((e): e is string => typeof e === "string") : [];
  return {
    type: typeof p.type === "string" ? p.type : undefined,
    title: typeof p.title === "string" ? p.title : undefined,
    status: typeof p.status === "number" ? p.status : undefined,
    detail: typeof p.detail === "string" ? p.detail : undefined,
    errors,
  };
}

/** fetch wraps socket errors as `TypeError: fetch failed` with the system error (or several) as cause. */
function networkCode(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const direct = codeOf(cause) ?? codeOf(error);
  if (direct) return direct;
  const inner = (cause as { errors?: unknown[] } | undefined)?.errors;
  return Array.isArray(inner) ? inner.map(codeOf).find((c) => c !== undefined) : undefined;
}

function codeOf(value: unknown): string | undefined {
  const code = (value as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

function causeMessage(error: unknown): string {
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : String(error);
}
