import type { KeyRecord, TenantRecord } from "./model.js";

/** How identity records are laid out in the KeyValue bucket, shared by the publisher and the data plane. */
export const KEY_PREFIX = "key.";
export const TENANT_PREFIX = "tenant.";

export type IdentityRecord = { kind: "key"; record: KeyRecord } | { kind: "tenant"; record: TenantRecord };

export interface PublishedValue {
  kind: IdentityRecord["kind"];
  record: KeyRecord | TenantRecord;
  /** When the change committed (epoch ms); null for a full resync, which measures no propagation. */
  committedAt: number | null;
}

export function kvKeyOf(kind: IdentityRecord["kind"], id: string): string {
  return `${kind === "key" ? KEY_PREFIX : TENANT_PREFIX}${id}`;
}
