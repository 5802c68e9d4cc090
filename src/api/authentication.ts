import type { FastifyRequest } from "fastify";
import type { TenantScope } from "../identity/model.js";
import { NODE_POLICY, type TenantPolicy } from "../image/tenant-policy.js";

/** Who is calling `/v1/*`, as far as the data plane is concerned. */
export interface Principal {
  tenant: string | null;
  keyId: string | null;
  policy: TenantPolicy;
  /** Headers every answer to this caller carries (RateLimit-*). */
  headers: Readonly<Record<string, string>>;
  /** Gives back the caller's in-flight slot; safe to call more than once. */
  release(): void;
}

/**
 * The authentication seam of `/v1/*`: runs before the body is read, from
 * memory only, and throws a ProblemError (401/403/429) to refuse.
 */
export interface Authenticator {
  authenticate(request: FastifyRequest, scope: TenantScope): Principal;
}

/** `auth.mode: none`: every caller is served anonymously with the node's own limits. */
export const anonymousAccess: Authenticator = {
  authenticate() {
    return { tenant: null, keyId: null, policy: NODE_POLICY, headers: {}, release() {} };
  },
};
