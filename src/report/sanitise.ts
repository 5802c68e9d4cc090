/**
 * The last pass over a support report before it leaves the node: whatever a
 * section printed, known secrets, API keys and tenant identities do not get
 * through. Sections already avoid them; this pass is the guarantee.
 */

/** Config keys whose values are secrets (as in config/redact.ts). */
const SECRET_KEY = /secret|password|token|credential|apikey|privatekey|(^|_)key$/i;

/** `imf_<key id>_<secret><checksum>`, also when cut short or pasted with a typo. */
const API_KEY = /imf_[0-9a-z]{26}_[0-9A-Za-z]{8,}/g;
const TENANT_ID = "ten_[0-9a-hjkmnp-tv-z]{26}";
/** Shorter secrets are not secrets worth the name, and replacing them would garble ordinary words. */
const MIN_SECRET_LENGTH = 6;
/** Names this short are ordinary words ("api", "eu"): replacing them would garble the report more than they reveal. */
const MIN_NAME_LENGTH = 3;

export const REDACTED_TEXT = "[redacted]";

export interface TenantIdentity {
  id: string;
  name: string;
}

/**
 * Tenant ids become `tenant-1`, `tenant-2`, … in order of first appearance,
 * and a tenant's name becomes the same pseudonym as its id, so the report
 * stays consistent (the tenant with the most failed requests is the one with
 * the dead letters) without saying who it is.
 */
export class ReportSanitiser {
  readonly #secrets: string[];
  readonly #byName = new Map<string, string>();
  readonly #pseudonyms = new Map<string, string>();
  readonly #tenantPattern: RegExp;

  constructor(options: { secrets: Iterable<string>; tenants: Iterable<TenantIdentity> }) {
    const secrets = new Set<string>();
    for (const secret of options.secrets) {
      if (secret.length < MIN_SECRET_LENGTH) continue;
      secrets.add(secret);
      secrets.add(encodeURIComponent(secret));
    }
    // Longest first, so a secret containing another is replaced whole.
    this.#secrets = [...secrets].sort((a, b) => b.length - a.length);
    for (const t of options.tenants) {
      const name = t.name.trim();
      if ([...name].length >= MIN_NAME_LENGTH) this.#byName.set(name.toLowerCase(), t.id);
    }
    const names = [...this.#byName.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.#tenantPattern = new RegExp([TENANT_ID, ...names].join("|"), "giu");
  }

  /** How many distinct tenants the report mentions (after `apply`). */
  get tenantCount(): number {
    return this.#pseudonyms.size;
  }

  apply(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join(REDACTED_TEXT);
    out = out.replace(API_KEY, "[redacted API key]");
    return out.replace(this.#tenantPattern, (match) =>
      this.pseudonym(this.#byName.get(match.toLowerCase()) ?? match.toLowerCase()),
    );
  }

  /** The stable pseudonym of a tenant id (`anonymous` stays itself: it names no customer). */
  pseudonym(tenantId: string): string {
    if (tenantId === "anonymous") return tenantId;
    let name = this.#pseudonyms.get(tenantId);
    if (!name) {
      name = `tenant-${this.#pseudonyms.size + 1}`;
      this.#pseudonyms.set(tenantId, name);
    }
    return name;
  }
}

/**
 * Every secret a configuration holds: values under secret-looking keys, and
 * from each URL its password and (when long enough to be a token, as in a
 * Slack webhook) its path and query.
 */
export function secretsOf(value: unknown, key = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => secretsOf(v, key));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => secretsOf(v, k));
  }
  if (typeof value !== "string" || value === "") return [];
  if (SECRET_KEY.test(key)) return [value];
  return urlSecrets(value);
}

export function urlSecrets(text: string): string[] {
  const url = parseUrl(text);
  if (!url) return [];
  const found: string[] = [];
  if (url.password) found.push(url.password, safeDecode(url.password));
  if (url.username && url.password) found.push(`${url.username}:${url.password}`);
  const rest = `${url.pathname}${url.search}`;
  if (rest.length >= 12) found.push(rest, text);
  return found;
}

/** `https://user:pw@hooks.example.com/T0/B0/xyz?x=1` → `https://hooks.example.com`. */
export function schemeAndHost(text: string): string {
  const url = parseUrl(text);
  return url ? `${url.protocol}//${url.host}` : text;
}

/** A copy with every URL-looking string reduced to its scheme and host. */
export function reduceUrls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reduceUrls);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reduceUrls(v)]));
  }
  return typeof value === "string" ? schemeAndHost(value) : value;
}

function parseUrl(text: string): URL | null {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return null;
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
