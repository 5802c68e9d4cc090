// The scopes and statuses are the API contract's words (src/contract/vocabulary.ts).
import type { ADMIN_SCOPE, TenantScope, TenantStatus } from "../contract/vocabulary.js";
import type { OutputFormat } from "../image/formats.js";

export {
  ADMIN_SCOPE,
  TENANT_SCOPES,
  TENANT_STATUSES,
  type TenantScope,
  type TenantStatus,
} from "../contract/vocabulary.js";
export type Scope = TenantScope | typeof ADMIN_SCOPE;

/** The limits enforced on a tenant's requests; null means "the node's own limit". */
export interface TenantLimits {
  /** Sustained requests per second (token bucket refill). */
  ratePerSecond: number;
  /** Requests allowed in a burst (token bucket size). */
  burst: number;
  /** Requests of this tenant being served at once, so a burst cannot fill the queue. */
  maxInFlight: number;
  maxInputBytes: number | null;
  outputFormats: OutputFormat[] | null;
}

export interface Tenant extends TenantLimits {
  id: string;
  name: string;
  status: TenantStatus;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

export interface ApiKey {
  id: string;
  /** null: an admin key. */
  tenantId: string | null;
  name: string;
  scopes: Scope[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  /** Set on a key that was rotated: the key that replaces it. */
  replacedBy: string | null;
  createdBy: string;
}

/** Who did an admin action and from where: the audit trail's "who" and "from where". */
export interface Actor {
  /** An admin key id, or `bootstrap` for the first start. */
  id: string;
  ip: string | null;
  requestId: string | null;
}

/** What the data plane holds for a key: enough to authenticate, nothing more. */
export interface KeyRecord {
  id: string;
  tenantId: string | null;
  secretSha256: string;
  scopes: Scope[];
  /** Epoch milliseconds. */
  expiresAt: number | null;
  revokedAt: number | null;
}

/** What the data plane holds for a tenant: its status and limits. */
export interface TenantRecord extends TenantLimits {
  id: string;
  status: TenantStatus;
}
