import type { OutputFormat } from "./formats.js";

/** A tenant's own limits on what it may ask of the resize path; null means "the node's". */
export interface TenantPolicy {
  maxInputBytes: number | null;
  outputFormats: readonly OutputFormat[] | null;
}

export const NODE_POLICY: TenantPolicy = { maxInputBytes: null, outputFormats: null };

export function effectiveMaxInputBytes(policy: TenantPolicy, nodeMax: number): number {
  return policy.maxInputBytes === null ? nodeMax : Math.min(policy.maxInputBytes, nodeMax);
}
