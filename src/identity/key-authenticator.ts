import { ProblemError } from "../errors/problem.js";
import { parseApiKey, secretMatches } from "./api-key.js";
import type { Authenticator, Principal } from "./authenticator.js";
import type { IdentityCache } from "./identity-cache.js";
import { ADMIN_SCOPE, type KeyRecord, type TenantScope } from "./model.js";
import type { TenantLimiter } from "./tenant-limiter.js";

const CHALLENGE = { "www-authenticate": 'Bearer realm="imgfleet"' };

/**
 * Authentication and tenant enforcement from the in-memory data plane:
 * key shape and checksum (no lookup for a typo), hash in constant time,
 * expiry and revocation, tenant status, scope, then the tenant's rate and
 * in-flight limits.
 */
export class KeyAuthenticator implements Authenticator {
  constructor(
    private readonly cache: IdentityCache,
    private readonly limiter: TenantLimiter,
    private readonly now: () => number = Date.now,
  ) {}

  authenticate(authorization: string | undefined, scope: TenantScope): Principal {
    const key = this.verify(authorization);
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
    };
  }

  /**
   * For `/admin/v1`, from the `Authorization` header: the key must be a live
   * admin key. Returns its id, the audit trail's actor.
   */
  authenticateAdmin(authorization: string | undefined): string {
    this.#requireLoaded();
    return this.authenticateAdminKey(bearerToken(authorization));
  }

  /** The same check for a key given as text (the console's sign-in form). */
  authenticateAdminKey(token: string): string {
    const key = this.verifyToken(token);
    if (key.tenantId !== null || !key.scopes.includes(ADMIN_SCOPE)) {
      throw new ProblemError(
        "wrong-key-type",
        "this is a tenant's API key; the admin API needs an admin key (printed at first start, or made with `imgfleet admin-keys create`)",
      );
    }
    return key.id;
  }

  /** The key in an `Authorization: Bearer` header, live and matching; any failure is a 401. */
  verify(authorization: string | undefined): KeyRecord {
    this.#requireLoaded();
    return this.verifyToken(bearerToken(authorization));
  }

  #requireLoaded(): void {
    if (!this.cache.loaded) {
      throw new ProblemError("identity-not-ready", "this node is still loading API keys; retry in a moment", {
        retryAfterS: 1,
      });
    }
  }

  /** A key given as text, live and matching; any failure is a 401. */
  verifyToken(token: string): KeyRecord {
    this.#requireLoaded();
    const parsed = parseApiKey(token);
    if (!parsed.ok) {
      throw new ProblemError(
        "invalid-api-key",
        parsed.reason === "checksum"
          ? "the API key's checksum does not match: it was mistyped or cut short; copy it again"
          : "the API key is malformed: expected imf_<key id>_<secret> as issued",
        { headers: CHALLENGE },
      );
    }
    const key = this.cache.key(parsed.id);
    if (!key || !secretMatches(parsed.secret, key.secretSha256)) throw invalidKey();
    const now = this.now();
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
    return key;
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
