import { NODE_POLICY, type TenantPolicy } from "../image/tenant-policy.js";
import type { TenantScope } from "./model.js";

/** Who is calling `/v1/*`, as far as the data plane is concerned. */
export interface Principal {
  tenant: string | null;
  keyId: string | null;
  policy: TenantPolicy;
  /** Headers every answer to this caller carries (RateLimit-*). */
  headers: Readonly<Record<string, string>>;
  /** Gives back the caller's in-flight slot; safe to call more than once. */
  release(): void;
  /**
   * Throws the refusal authentication would give now, when the key was
   * revoked or expired, or its tenant suspended or deleted, since the
   * request was admitted (from memory: call it once a slow body has arrived).
   */
  recheck(): void;
}

/**
 * The authentication port of `/v1/*`: given the request's `Authorization`
 * header (undefined when absent), it answers from memory only, before the
 * body is read, and throws a ProblemError (401/403/429) to refuse. It knows
 * nothing of HTTP servers, so any transport can call it.
 */
export interface Authenticator {
  /** `address`: the client's, when known, so failed attempts are also limited per address. */
  authenticate(authorization: string | undefined, scope: TenantScope, address?: string): Principal;
}

/** `auth.mode: none`: every caller is served anonymously with the node's own limits. */
export const anonymousAccess: Authenticator = {
  authenticate() {
    return { tenant: null, keyId: null, policy: NODE_POLICY, headers: {}, release() {}, recheck() {} };
  },
};
