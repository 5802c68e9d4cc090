/**
 * A tenant's allowed sources: URL prefixes, compared on the normalised URL
 * (WHATWG: lower-case host, default port dropped, `..` resolved), so
 * `https://cdn.example.com` cannot be matched by `https://cdn.example.com.evil.net/`
 * or `https://cdn.example.com@evil.net/`, and `/images/../private` is not under `/images/`.
 * A prefix without a path means the whole host; end a path with `/` to allow one folder only.
 */
export function normaliseSourcePrefix(prefix: string): string {
  const url = new URL(prefix.trim());
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(`source prefix '${prefix}' must be an http or https URL`);
  }
  if (url.username || url.password) throw new Error(`source prefix '${prefix}' must not carry credentials`);
  if (url.search || url.hash) throw new Error(`source prefix '${prefix}' must not carry a query or fragment`);
  return url.href;
}

/** The `isAllowedSource` callback the source fetcher asks of every URL and redirect target. */
export function sourceMatcher(prefixes: readonly string[]): (url: URL) => boolean {
  const normalised = prefixes.map(normaliseSourcePrefix);
  return (url) => !url.username && !url.password && normalised.some((prefix) => url.href.startsWith(prefix));
}
