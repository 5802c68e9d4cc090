import { isIPv4, isIPv6 } from "node:net";

/**
 * Which addresses the source fetcher may connect to. Anything that is not a
 * globally routable unicast address is refused: loopback, private,
 * link-local (169.254.169.254, the cloud metadata service, among them),
 * CGNAT, unique-local, multicast, unspecified, broadcast, documentation,
 * benchmarking and reserved ranges, and IPv6 forms that carry a refused IPv4
 * address (IPv4-mapped and -compatible, 6to4, NAT64, Teredo, ISATAP).
 * An operator lists on-premises networks in `allowNetworks` (CIDRs).
 */

export type AddressClass =
  | "public"
  | "unspecified"
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "unique-local"
  | "multicast"
  | "broadcast"
  | "documentation"
  | "benchmarking"
  | "reserved"
  | "invalid";

interface Range {
  bytes: Uint8Array;
  prefix: number;
}

/** Parses an IPv4 or IPv6 literal (no brackets, no zone) into its bytes; undefined if it is neither. */
export function parseAddress(address: string): Uint8Array | undefined {
  if (isIPv4(address)) return Uint8Array.from(address.split(".").map(Number));
  if (!isIPv6(address) || address.includes("%")) return undefined;
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (dotted) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted.split(".").map(Number);
    text = `${text.slice(0, -dotted.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill("0");
  const groups = [...left, ...zeros, ...right].map((g) => Number.parseInt(g, 16));
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** Parses `a.b.c.d/n` or `x::/n`; throws naming the bad CIDR (it comes from configuration). */
export function parseCidr(cidr: string): Range {
  const [address = "", prefixText] = cidr.trim().split("/");
  const bytes = parseAddress(address);
  const max = bytes ? bytes.length * 8 : 0;
  const prefix = prefixText === undefined ? max : /^\d+$/.test(prefixText) ? Number(prefixText) : -1;
  if (!bytes || prefix < 0 || prefix > max) {
    throw new Error(`'${cidr}' is not a CIDR (expected e.g. 10.0.0.0/8 or fd00::/8)`);
  }
  return { bytes, prefix };
}

function inRange(bytes: Uint8Array, range: Range): boolean {
  if (bytes.length !== range.bytes.length) return false;
  for (let bit = 0; bit < range.prefix; bit += 8) {
    const take = Math.min(8, range.prefix - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    const i = bit / 8;
    if (((bytes[i] ?? 0) & mask) !== ((range.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

function ranges(table: readonly (readonly [string, AddressClass])[]): (readonly [Range, AddressClass])[] {
  return table.map(([cidr, kind]) => [parseCidr(cidr), kind] as const);
}

/** IANA's IPv4 special-purpose registry, by what a reader of a refusal needs to know. */
const IPV4_RANGES = ranges([
  ["0.0.0.0/8", "unspecified"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "cgnat"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "reserved"],
  ["192.0.2.0/24", "documentation"],
  ["192.88.99.0/24", "reserved"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["255.255.255.255/32", "broadcast"],
  ["240.0.0.0/4", "reserved"],
]);

const IPV6_RANGES = ranges([
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["64:ff9b:1::/48", "private"],
  ["100::/64", "reserved"],
  ["2001:db8::/32", "documentation"],
  ["3fff::/20", "documentation"],
  ["fc00::/7", "unique-local"],
  ["fe80::/10", "link-local"],
  ["fec0::/10", "reserved"],
  ["ff00::/8", "multicast"],
]);

/** Only 2000::/3 is allocated as global unicast; the rest of the space is refused. */
const IPV6_GLOBAL = parseCidr("2000::/3");

const v4 = (b: Uint8Array, at: number, xor = 0): Uint8Array =>
  Uint8Array.from([0, 1, 2, 3].map((i) => (b[at + i] ?? 0) ^ xor));

/**
 * The IPv4 address an IPv6 form carries, if any: a packet to it may end up
 * at that IPv4 address, so the IPv4 address is what must be judged.
 */
export function embeddedIPv4(bytes: Uint8Array): { form: string; address: Uint8Array } | undefined {
  if (bytes.length !== 16) return undefined;
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff)
    return { form: "IPv4-mapped", address: v4(bytes, 12) };
  if (zeros(0, 12)) return { form: "IPv4-compatible", address: v4(bytes, 12) };
  if (inRange(bytes, NAT64)) return { form: "NAT64", address: v4(bytes, 12) };
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return { form: "6to4", address: v4(bytes, 2) };
  if (bytes[0] === 0x20 && bytes[1] === 0x01 && bytes[2] === 0 && bytes[3] === 0) {
    return { form: "Teredo", address: v4(bytes, 12, 0xff) };
  }
  if ((bytes[8] === 0 || bytes[8] === 0x02) && bytes[9] === 0 && bytes[10] === 0x5e && bytes[11] === 0xfe) {
    return { form: "ISATAP", address: v4(bytes, 12) };
  }
  return undefined;
}

const NAT64 = parseCidr("64:ff9b::/96");

function classifyBytes(bytes: Uint8Array): AddressClass {
  const table = bytes.length === 4 ? IPV4_RANGES : IPV6_RANGES;
  for (const [range, kind] of table) if (inRange(bytes, range)) return kind;
  if (bytes.length === 16 && !inRange(bytes, IPV6_GLOBAL)) return "reserved";
  return "public";
}

export interface Classification {
  address: string;
  class: AddressClass;
  /** For an IPv6 form carrying an IPv4 address: which form, and that address. */
  embedded?: { form: string; address: string } | undefined;
}

/** What kind of address this is; an IPv6 form takes the class of the IPv4 address it carries (:: and ::1 excepted). */
export function classifyAddress(address: string): Classification {
  const bytes = parseAddress(address);
  if (!bytes) return { address, class: "invalid" };
  const own = classifyBytes(bytes);
  const inner = own === "unspecified" || own === "loopback" ? undefined : embeddedIPv4(bytes);
  if (!inner) return { address, class: own };
  const embedded = { form: inner.form, address: inner.address.join(".") };
  const innerClass = classifyBytes(inner.address);
  // These forms are nothing but a way to write the IPv4 address; the others also route by their own prefix.
  const onlyIPv4 = inner.form === "IPv4-mapped" || inner.form === "IPv4-compatible" || inner.form === "NAT64";
  return { address, class: onlyIPv4 || innerClass !== "public" ? innerClass : own, embedded };
}

/** The operator's rule: public addresses, plus the networks listed in `allowNetworks`. */
export class AddressPolicy {
  private readonly allowed: Range[];

  constructor(allowNetworks: readonly string[] = []) {
    this.allowed = allowNetworks.map(parseCidr);
  }

  /** The classification, with `permitted` true when the fetcher may connect to this address. */
  judge(address: string): Classification & { permitted: boolean } {
    const classification = classifyAddress(address);
    if (classification.class === "invalid") return { ...classification, permitted: false };
    const bytes = parseAddress(address) as Uint8Array;
    const forms = [bytes];
    // An IPv4 network listed by the operator also covers that address written as IPv4-mapped IPv6.
    if (classification.embedded?.form === "IPv4-mapped") forms.push(embeddedIPv4(bytes)?.address ?? bytes);
    const listed = this.allowed.some((range) => forms.some((form) => inRange(form, range)));
    return { ...classification, permitted: listed || classification.class === "public" };
  }
}
