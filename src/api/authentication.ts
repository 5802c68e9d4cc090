import type { FastifyRequest } from "fastify";

/** Who is calling, as far as the data plane is concerned. */
export interface Principal {
  tenant: string | null;
  keyId: string | null;
}

/**
 * The authentication seam of `/v1/*`: runs before the body is read and
 * throws a ProblemError (401/403/429) to refuse. The identity layer
 * (tenants and API keys) plugs in here; until then a node serves callers
 * anonymously.
 */
export interface Authenticator {
  authenticate(request: FastifyRequest): Promise<Principal>;
}

export const anonymousAccess: Authenticator = {
  async authenticate() {
    return { tenant: null, keyId: null };
  },
};
