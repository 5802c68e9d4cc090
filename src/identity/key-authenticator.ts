import { ProblemError } from "../errors/problem.js";
import { parseApiKey, secretMatches } from "./api-key.js";
import type { Authenticator, Principal } from "./authenticator.js";
import { type Backoff, GuessLimiter } from "./guess-limiter.js";
import type { IdentityCache } from "./identity-cache.js";
import { ADMIN_SCOPE, type KeyRecord, type TenantScope } from "./model.js";
import type { TenantLimiter } from "./tenant-limiter.js";

const CHALLENGE = { "www-authenticate": 'Bearer realm="imgfleet"' };

/** Where a key is presented: `/v1`, Bearer on `/admin/v1`, or the console's sign-in form. */
export type AuthSurface = "api" | "admin" | "sign-in";

/** One presentation of a key: where, and from which client address when known. */
export interface AuthAttempt {
  surface: AuthSurface;
  address?: string | undefined;
}

export interface GuessGuard {
  /** Failed attempts per address and per key id, with backoff. */
  guesses: GuessLimiter;
  /** Told of every failed attempt refused because its address or key id is in backoff (metrics). */
  onThrottled?: (surface: AuthSurface, by: Backoff["by"]) => void;
}

/** Failed attempts allowed per minute when no guard is given (the console's default). */
const DEFAULT_FAILURES_PER_MINUTE = 10;

/**
 * Authentication and tenant enforcement from the in-memory data plane:
 * key shape and checksum (no lookup for a typo), hash in constant time
 * (unknown ids included), expiry and revocation, tenant status, scope, then
 * the tenant's rate and in-flight limits. Failed attempts are limited per
 * address and per key id; a correct key is accepted whatever their state.
 */
export class KeyAuthenticator implements Authenticator {
  readonly #guard: GuessGuard;

  constructor(
    private readonly cache: IdentityCache,
    private readonly limiter: TenantLimiter,
    private readonly now: () => number = Date.now,
    guard?: GuessGuard,
  ) {
    this.#guard = guard ?? {
      guesses: new GuessLimiter({ failuresPerMinute: DEFAULT_FAILURES_PER_MINUTE }, now),
    };
  }

  authenticate(authorization: string | undefined, scope: TenantScope, address?: string): Principal {
    const key = this.verify(authorization, { surface: "api", address });
    if (key.tenantId === null) {
      throw new ProblemError(
        "wrong-key-type",
        "this is an admin key: it manages the service under /admin/v1; use a tenant's API key here",
      );
    }
    const tenant = this.cache.tenant(key.tenantId);
    if (!tenant || tenant.status === "deleted") throw invalidKey();
    const subject = { tenant: tenant.id, keyId: key.id };
    if (tenant.status === "suspended") {
      throw new ProblemError("tenant-suspended", "this account is suspended; contact the service operator", {
        subject,
      });
    }
    if (!key.scopes.includes(scope)) {
      throw new ProblemError(
        "missing-scope",
        `this API key lacks the '${scope}' scope (it has: ${key.scopes.join(", ") || "none"}); create a key with it`,
        { extras: { requiredScope: scope }, subject },
      );
    }
    const rate = this.limiter.take(tenant);
    if (!rate.allowed) {
      throw new ProblemError(
        "rate-limited",
        `over this account's rate limit of ${tenant.ratePerSecond} requests/s (burst ${tenant.burst}); retry after ${rate.retryAfterS} s`,
        { retryAfterS: rate.retryAfterS, headers: rate.headers, subject },
      );
    }
    if (!this.limiter.enter(tenant)) {
      throw new ProblemError(
        "too-many-in-flight",
        `this account already has ${tenant.maxInFlight} requests in progress, its limit; wait for one to finish`,
        { retryAfterS: 1, headers: rate.headers, subject },
      );
    }
    let released = false;
    return {
      tenant: tenant.id,
      keyId: key.id,
      policy: { maxInputBytes: tenant.maxInputBytes, outputFormats: tenant.outputFormats },
      headers: rate.headers,
      release: () => {
        if (released) return;
        released = true;
        this.limiter.leave(tenant.id);
      },
      recheck: () => this.#recheck(key.id, tenant.id),
    };
  }

  /** The same key and tenant, read again from memory: still live, still active? */
  #recheck(keyId: string, tenantId: string): void {
    const key = this.cache.key(keyId);
    if (!key) throw invalidKey();
    refuseIfDead(key, this.now());
    const tenant = this.cache.tenant(tenantId);
    if (!tenant || tenant.status === "deleted") throw invalidKey();
    if (tenant.status === "suspended") {
      throw new ProblemError("tenant-suspended", "this account is suspended; contact the service operator", {
        subject: { tenant: tenant.id, keyId },
      });
    }
  }

  /**
   * For `/admin/v1`, from the `Authorization` header: the key must be a live
   * admin key. Returns its id, the audit trail's actor.
   */
  authenticateAdmin(authorization: string | undefined, address?: string): string {
    this.#requireLoaded();
    return this.authenticateAdminKey(bearerToken(authorization), { surface: "admin", address });
  }

  /** The same check for a key given as text (the console's sign-in form). */
  authenticateAdminKey(token: string, attempt: AuthAttempt = { surface: "sign-in" }): string {
    const key = this.verifyToken(token, attempt);
    if (key.tenantId !== null || !key.scopes.includes(ADMIN_SCOPE)) {
      throw new ProblemError(
        "wrong-key-type",
        "this is a tenant's API key; the admin API needs an admin key (printed at first start, or made with `imgfleet admin-keys create`)",
      );
    }
    return key.id;
  }

  /** The key in an `Authorization: Bearer` header, live and matching; any failure is a 401. */
  verify(authorization: string | undefined, attempt: AuthAttempt = { surface: "api" }): KeyRecord {
    this.#requireLoaded();
    return this.verifyToken(bearerToken(authorization), attempt);
  }

  #requireLoaded(): void {
    if (!this.cache.loaded) {
      throw new ProblemError("identity-not-ready", "this node is still loading API keys; retry in a moment", {
        retryAfterS: 1,
      });
    }
  }

  /**
   * A key given as text, live and matching; any failure is a 401, or a 429
   * once the attempt's address or key id has failed too often (a correct
   * key is checked first, and accepted, whatever that state).
   */
  verifyToken(token: string, attempt: AuthAttempt = { surface: "api" }): KeyRecord {
    this.#requireLoaded();
    const parsed = parseApiKey(token);
    if (!parsed.ok) throw this.#failed(attempt, undefined, malformedKey(parsed.reason));
    const key = this.cache.key(parsed.id);
    // Hashed and compared whether or not the id exists: the time taken does not tell which ids do.
    const matches = secretMatches(parsed.secret, key?.secretSha256);
    if (!key || !matches) throw this.#failed(attempt, parsed.id, invalidKey());
    refuseIfDead(key, this.now());
    return key;
  }

  /** A failed attempt, counted: its own refusal within budget, else a 429 saying when to retry. */
  #failed(attempt: AuthAttempt, keyId: string | undefined, refusal: ProblemError): ProblemError {
    const backoff = this.#guard.guesses.fail({ address: attempt.address, keyId });
    if (backoff.blockedMs === 0) return refusal;
    this.#guard.onThrottled?.(attempt.surface, backoff.by);
    return throttled(attempt, backoff);
  }
}

function throttled(attempt: AuthAttempt, backoff: Backoff): ProblemError {
  const from = backoff.by === "key" ? "with this key id" : `from ${attempt.address}`;
  const options = { retryAfterS: backoff.retryAfterS, extras: { limitedBy: backoff.by } };
  if (attempt.surface === "sign-in") {
    return new ProblemError(
      "sign-in-rate-limited",
      `too many failed sign-ins ${from}; retry after ${backoff.retryAfterS} s (a valid admin key is still accepted at once)`,
      options,
    );
  }
  return new ProblemError(
    "auth-rate-limited",
    `too many failed attempts with API keys ${from}; retry after ${backoff.retryAfterS} s (a valid key is still accepted at once)`,
    options,
  );
}

function malformedKey(reason: "shape" | "checksum"): ProblemError {
  return new ProblemError(
    "invalid-api-key",
    reason === "checksum"
      ? "the API key's checksum does not match: it was mistyped or cut short; copy it again"
      : "the API key is malformed: expected imf_<key id>_<secret> as issued",
    { headers: CHALLENGE },
  );
}

/** A revoked or expired key is refused with when it stopped working. */
function refuseIfDead(key: KeyRecord, now: number): void {
  if (key.revokedAt !== null && key.revokedAt <= now) {
    throw new ProblemError(
      "api-key-revoked",
      `this API key was revoked at ${new Date(key.revokedAt).toISOString()}`,
      { headers: CHALLENGE },
    );
  }
  if (key.expiresAt !== null && key.expiresAt <= now) {
    throw new ProblemError(
      "api-key-expired",
      `this API key expired at ${new Date(key.expiresAt).toISOString()}; use its replacement or create a new key`,
      { headers: CHALLENGE },
    );
  }
}

function bearerToken(header: string | undefined): string {
  const match = header ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
  if (!match?.[1]) {
    throw new ProblemError(
      "unauthenticated",
      header
        ? "the Authorization header must be 'Bearer <API key>'"
        : "send your API key as 'Authorization: Bearer <API key>'",
      { headers: CHALLENGE },
    );
  }
  return match[1];
}

function invalidKey(): ProblemError {
  return new ProblemError("invalid-api-key", "no such API key; check that it was copied whole", {
    headers: CHALLENGE,
  });
}
