import type { FastifyRequest } from "fastify";
import type { Config } from "../config/schema.js";
import type { Database } from "../db/database.js";
import type { Flags } from "../flags/flags.js";
import type { LiveNode } from "../fleet/discovery.js";
import type { Identity } from "../identity/identity.js";
import type { Actor } from "../identity/model.js";
import type { Ops } from "../ops/ops.js";
import type { ReportSources } from "../report/sources.js";
import type { ConsoleSessions } from "../session/sessions.js";

/*
 * What every admin route module shares: the admin API's dependencies, the
 * authenticated actor and paging. Its own module so that admin-api.ts can
 * register the route modules without them importing it back.
 */

export interface AdminDeps {
  identity: Identity;
  config: Readonly<Config>;
  /** Extra data-plane facts for GET /admin/v1/identity. */
  outboxBacklog: () => Promise<number>;
  /** Usage reports and cost estimates read the rollups. */
  db: Database;
  /** The fleet as discovery sees it. */
  nodes: () => Promise<LiveNode[]>;
  ops: Ops;
  /** Feature flags: this node's in-memory copy and the admin side. */
  flags: Flags;
  /** This node's id, for answers that say which node evaluated something. */
  nodeId: string;
  /** What GET /admin/v1/report reads. */
  report: ReportSources;
  /** Web console sessions: the session cookie is accepted beside the bearer key. Absent: bearer only. */
  sessions?: ConsoleSessions;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The admin key behind this request, for the audit trail. */
    adminActor: Actor | null;
  }
}

/** The admin key behind a request that passed the admin API's authentication. */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.adminActor) throw new Error("admin route reached without an authenticated actor");
  return request.adminActor;
}

/** One page of a list, with the cursor for the next one (null at the end). */
export function page<T extends { id: string }>(
  items: T[],
  limit: number,
): { items: T[]; next: string | null } {
  return { items, next: items.length === limit ? (items.at(-1)?.id ?? null) : null };
}
