import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { ProblemError } from "../errors/problem.js";
import type { IdentityCache } from "../identity/identity-cache.js";
import type { KeyAuthenticator } from "../identity/key-authenticator.js";
import { ADMIN_SCOPE } from "../identity/model.js";
import { type KeyValue, KvFullError } from "../kv/key-value.js";
import { LOG_ONLY_WIRE, readWire, stamped, type WireRejections } from "../wire/wire.js";
import {
  cameOverTls,
  clearSessionCookie,
  hasSessionCookie,
  sessionCookie,
  sessionIdFrom,
} from "./cookies.js";

/** The `console` settings sessions need (config.console satisfies it; its signInsPerMinute limits the key check). */
export interface SessionSettings {
  idleTimeoutMs: number;
  sessionLifetimeMs: number;
}

/**
 * What the sessions bucket holds per session, under the hash of its id
 * (version 1). Strict: a field this version does not know may bind the
 * session to something it would not check (an address, a scope), so such a
 * session is refused here and its user signs in again.
 */
const SessionRecordWire = z.strictObject({
  /** The admin key signed in with: the audit trail's actor, checked live on every request. */
  keyId: z.string().min(1),
  /** The synchronizer token every write must echo in X-CSRF-Token. */
  csrf: z.string().min(16),
  /** Epoch ms. */
  createdAt: z.number().int().nonnegative(),
  lastSeenAt: z.number().int().nonnegative(),
});
type SessionRecord = z.infer<typeof SessionRecordWire>;

/** What sign-in and `GET /admin/v1/session` answer. */
export interface SessionView {
  keyId: string;
  csrfToken: string;
  idleTimeoutMs: number;
  /** When the session ends whatever happens (ISO 8601). */
  expiresAt: string;
}

export type EndReason = "idle" | "lifetime" | "signed-out" | "key-revoked";

export const CSRF_HEADER = "x-csrf-token";
/**
 * Sent by the console's automatic refreshes (`x-console-poll: 1`): they do
 * not count as activity, so a dashboard left open still ends its session
 * after the idle timeout.
 */
export const POLL_HEADER = "x-console-poll";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const KEY_PREFIX = "s.";
/**
 * Writing `lastSeenAt` on every request would cost a replicated KV write per
 * click; it is refreshed at most this often instead (a tenth of the idle
 * timeout, at most a minute), so a session may end up to that much early.
 */
const MAX_TOUCH_INTERVAL_MS = 60_000;

const END_DETAIL: Record<EndReason, string> = {
  idle: "your console session ended after a period without activity; sign in again",
  lifetime: "your console session reached its maximum lifetime; sign in again",
  "signed-out": "there is no such console session (signed out, or ended); sign in again",
  "key-revoked": "the admin key this console session signed in with was revoked or has expired",
};

/**
 * Console sessions, kept server-side in the sessions KeyValue bucket
 * (embedded: in memory; fleet: a replicated NATS KV bucket, so any API node
 * behind the load balancer knows every session, and signing out ends it
 * everywhere). The cookie carries a random id; the bucket is keyed by its
 * SHA-256, so reading the bucket does not yield usable cookies.
 */
export class ConsoleSessions {
  readonly #touchEveryMs: number;

  constructor(
    private readonly deps: {
      kv: KeyValue;
      settings: SessionSettings;
      keys: KeyAuthenticator;
      cache: IdentityCache;
      now?: () => number;
      /** Where a session value that fails its schema is reported (default: logged only). */
      wire?: WireRejections;
    },
  ) {
    this.#touchEveryMs = Math.min(MAX_TOUCH_INTERVAL_MS, deps.settings.idleTimeoutMs / 10);
  }

  /**
   * Exchanges an admin key for a session: the same check as the bearer path,
   * whose failed attempts are limited per client address and per key id (a
   * valid key is accepted whatever their state). Returns the view and the cookie.
   */
  async signIn(request: FastifyRequest, adminKey: string): Promise<{ view: SessionView; cookie: string }> {
    const keyId = this.deps.keys.authenticateAdminKey(adminKey, { surface: "sign-in", address: request.ip });
    const id = randomBytes(32).toString("base64url");
    const now = this.#now();
    const record: SessionRecord = {
      keyId,
      csrf: randomBytes(32).toString("base64url"),
      createdAt: now,
      lastSeenAt: now,
    };
    try {
      await this.deps.kv.create(storageKey(id), encodeRecord(record));
    } catch (error) {
      if (!(error instanceof KvFullError)) throw error;
      throw new ProblemError(
        "overloaded",
        "too many console sessions are open; sign out elsewhere or wait for idle sessions to end",
        { retryAfterS: 60, cause: error },
      );
    }
    const cookie = sessionCookie(id, {
      secure: cameOverTls(request),
      maxAgeS: this.deps.settings.sessionLifetimeMs / 1000,
    });
    return { view: this.#view(record), cookie };
  }

  /**
   * The admin key behind a request to `/admin/v1`: the bearer key when one is
   * sent (the CLI, scripts) or no session cookie is; else the session, with
   * the CSRF token required on writes.
   */
  async authenticateAdmin(request: FastifyRequest): Promise<string> {
    if (request.headers.authorization !== undefined || !hasSessionCookie(request.headers.cookie)) {
      return this.deps.keys.authenticateAdmin(request.headers.authorization, request.ip);
    }
    const record = await this.#live(request);
    if (!SAFE_METHODS.has(request.method) && !csrfMatches(request.headers[CSRF_HEADER], record.csrf)) {
      throw new ProblemError(
        "csrf-failed",
        `a console write must carry the session's token in ${CSRF_HEADER}; reload the console (scripts: use Authorization: Bearer with an admin key)`,
      );
    }
    return record.keyId;
  }

  /** `GET /admin/v1/session`: the live session and its CSRF token (the page reads it after a reload). */
  async current(request: FastifyRequest): Promise<SessionView> {
    if (!hasSessionCookie(request.headers.cookie)) {
      throw new ProblemError("unauthenticated", "no console session: sign in with an admin key");
    }
    return this.#view(await this.#live(request));
  }

  /** `DELETE /admin/v1/session`: ends the session everywhere; returns the cookie that clears it. */
  async signOut(request: FastifyRequest): Promise<{ keyId: string | null; cookie: string }> {
    const cookie = clearSessionCookie(cameOverTls(request));
    const id = sessionIdFrom(request.headers.cookie);
    const entry = id ? await this.deps.kv.entry(storageKey(id)) : null;
    const record = id && entry ? this.#read(entry.key, entry.value) : null;
    // An unreadable session is left to expire: without its token, nobody can prove the sign-out is theirs.
    if (!id || !record) return { keyId: null, cookie };
    if (!csrfMatches(request.headers[CSRF_HEADER], record.csrf)) {
      throw new ProblemError("csrf-failed", `signing out needs the session's token in ${CSRF_HEADER}`);
    }
    await this.deps.kv.delete(storageKey(id));
    return { keyId: record.keyId, cookie };
  }

  /** The session behind the request's cookie, refreshed; a 401 session-expired when it has ended. */
  async #live(request: FastifyRequest): Promise<SessionRecord> {
    const secure = cameOverTls(request);
    const ended = (reason: EndReason) =>
      new ProblemError("session-expired", END_DETAIL[reason], {
        extras: { reason },
        headers: { "set-cookie": clearSessionCookie(secure) },
      });
    const id = sessionIdFrom(request.headers.cookie);
    if (!id) throw ended("signed-out");
    const key = storageKey(id);
    const entry = await this.deps.kv.entry(key);
    const record = entry && this.#read(key, entry.value);
    if (!entry || !record) throw ended("signed-out");
    const now = this.#now();
    const reason = this.#endReason(record, now);
    if (reason) {
      await this.deps.kv.delete(key);
      throw ended(reason);
    }
    const poll = request.headers[POLL_HEADER] === "1";
    if (!poll && now - record.lastSeenAt >= this.#touchEveryMs) {
      const touched = { ...record, lastSeenAt: now };
      // Compare-and-set: a sign-out that happened meanwhile is not undone by this write.
      const revision = await this.deps.kv.update(key, encodeRecord(touched), entry.revision);
      if (revision === null && !(await this.deps.kv.entry(key))) throw ended("signed-out");
      return touched;
    }
    return record;
  }

  #endReason(record: SessionRecord, now: number): EndReason | null {
    const { idleTimeoutMs, sessionLifetimeMs } = this.deps.settings;
    if (now - record.createdAt >= sessionLifetimeMs) return "lifetime";
    if (now - record.lastSeenAt >= idleTimeoutMs) return "idle";
    const key = this.deps.cache.key(record.keyId);
    const live =
      key !== undefined &&
      key.tenantId === null &&
      key.scopes.includes(ADMIN_SCOPE) &&
      (key.revokedAt === null || key.revokedAt > now) &&
      (key.expiresAt === null || key.expiresAt > now);
    return live ? null : "key-revoked";
  }

  #view(record: SessionRecord): SessionView {
    return {
      keyId: record.keyId,
      csrfToken: record.csrf,
      idleTimeoutMs: this.deps.settings.idleTimeoutMs,
      expiresAt: new Date(record.createdAt + this.deps.settings.sessionLifetimeMs).toISOString(),
    };
  }

  #read(key: string, value: string): SessionRecord | null {
    const from = { source: "session" as const, from: `KV sessions key ${key}` };
    return readWire(SessionRecordWire, value, from, this.deps.wire ?? LOG_ONLY_WIRE);
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }
}

/** The bucket key of a session: the SHA-256 of its id, never the id itself. */
export function storageKey(sessionId: string): string {
  return `${KEY_PREFIX}${createHash("sha256").update(sessionId).digest("hex")}`;
}

function encodeRecord(record: SessionRecord): string {
  return JSON.stringify(stamped(record));
}

function csrfMatches(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== "string") return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
