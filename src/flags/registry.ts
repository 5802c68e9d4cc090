import type { Flag } from "./model.js";

/**
 * The flags this version of imgfleet reads, with what they switch and their
 * built-in default (what every node uses until an operator stores settings).
 * A flag that is retired stays out of this table; its stored settings are
 * then shown as unknown and can be deleted.
 */
export const KNOWN_FLAGS = {
  "avif-auto": {
    description:
      "format=auto may answer AVIF to clients that accept it (otherwise WebP). AVIF takes several times the CPU of WebP to encode, so it is rolled out per tenant or by percentage while you watch worker utilisation.",
    default: false,
  },
} as const satisfies Record<string, { description: string; default: boolean }>;

export type KnownFlagName = keyof typeof KNOWN_FLAGS;

export function isKnownFlag(name: string): name is KnownFlagName {
  return Object.hasOwn(KNOWN_FLAGS, name);
}

/** A flag's settings before anyone changed them: the built-in default for everyone. */
export function builtInFlag(name: string): Flag {
  const known = isKnownFlag(name) ? KNOWN_FLAGS[name] : undefined;
  return {
    name,
    description: known?.description ?? "",
    default: known?.default ?? false,
    percentage: 0,
    tenants: {},
    updatedAt: null,
    updatedBy: null,
  };
}
