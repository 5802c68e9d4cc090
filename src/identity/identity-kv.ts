import { z } from "zod";
import { OUTPUT_FORMATS } from "../image/formats.js";
import { checkWire, type SameKeys, stamped, type WireRead } from "../wire/wire.js";
import { ADMIN_SCOPE, type KeyRecord, TENANT_SCOPES, TENANT_STATUSES, type TenantRecord } from "./model.js";

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

const epochMs = z.number().int().nonnegative();

/*
 * Records are strict: a field this version does not know may be a
 * restriction (an allowed-address list, a new limit) that it would not
 * enforce, so the record is refused and the data plane forgets the key or
 * tenant (fail closed) rather than authenticate by half of it.
 */
const KeyRecordWire = z.strictObject({
  id: z.string().min(1),
  tenantId: z.string().min(1).nullable(),
  secretSha256: z.string().regex(/^[0-9a-f]{64}$/),
  scopes: z.array(z.enum([...TENANT_SCOPES, ADMIN_SCOPE])),
  expiresAt: epochMs.nullable(),
  revokedAt: epochMs.nullable(),
});

const TenantRecordWire = z.strictObject({
  id: z.string().min(1),
  status: z.enum(TENANT_STATUSES),
  ratePerSecond: z.number().finite().positive(),
  burst: z.number().int().positive(),
  maxInFlight: z.number().int().positive(),
  maxInputBytes: z.number().int().positive().nullable(),
  outputFormats: z.array(z.enum(OUTPUT_FORMATS)).nullable(),
});

const _keyKeys: SameKeys<KeyRecord, z.infer<typeof KeyRecordWire>> = true;
const _tenantKeys: SameKeys<TenantRecord, z.infer<typeof TenantRecordWire>> = true;
void [_keyKeys, _tenantKeys];

/** A value of the identity bucket (version 1); its kind must match its key's prefix. */
const PublishedValueWire = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("key"), record: KeyRecordWire, committedAt: epochMs.nullable() }),
  z.object({ kind: z.literal("tenant"), record: TenantRecordWire, committedAt: epochMs.nullable() }),
]);

export function kvKeyOf(kind: IdentityRecord["kind"], id: string): string {
  return `${kind === "key" ? KEY_PREFIX : TENANT_PREFIX}${id}`;
}

export function encodePublishedValue(value: PublishedValue): string {
  return JSON.stringify(stamped(value));
}

/** Reads a value of the identity bucket under `key`; refused when its kind or id does not match the key. */
export function decodePublishedValue(raw: string, key: string, bucket: string): WireRead<PublishedValue> {
  const origin = { source: "identity" as const, from: `KV ${bucket} key ${key}` };
  const read = checkWire(PublishedValueWire, raw, origin);
  if (!read.ok || kvKeyOf(read.value.kind, read.value.record.id) === key) return read;
  const detail = `holds ${read.value.kind} ${read.value.record.id}, which belongs under ${kvKeyOf(read.value.kind, read.value.record.id)}`;
  return { ok: false, rejection: { ...origin, version: "1", reason: "invalid", detail } };
}
