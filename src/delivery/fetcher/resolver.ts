import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

/** One address a hostname resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * The port the source fetcher resolves hostnames through. Every adapter
 * returns all the addresses it knows for the name (an empty list, or an
 * error, when there are none); the fetcher checks each before connecting,
 * so whatever a resolver answers, only permitted addresses are reached.
 */
export interface Resolver {
  resolve(hostname: string): Promise<ResolvedAddress[]>;
}

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), in the order it gives. */
export class SystemResolver implements Resolver {
  async resolve(hostname: string): Promise<ResolvedAddress[]> {
    const answers = await lookup(hostname, { all: true, verbatim: true });
    return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
  }
}

/**
 * Names mapped to fixed addresses, before any other resolver: tests make a
 * hostname resolve to any address (a private one, a local origin) with it.
 */
export class MappedResolver implements Resolver {
  private readonly names: ReadonlyMap<string, readonly string[]>;

  constructor(
    names: Readonly<Record<string, string | readonly string[]>>,
    private readonly fallback?: Resolver,
  ) {
    this.names = new Map(
      Object.entries(names).map(([name, addresses]) => [
        name.toLowerCase(),
        typeof addresses === "string" ? [addresses] : addresses,
      ]),
    );
  }

  async resolve(hostname: string): Promise<ResolvedAddress[]> {
    const mapped = this.names.get(hostname.toLowerCase());
    if (mapped) return mapped.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
    if (this.fallback) return this.fallback.resolve(hostname);
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
  }
}
