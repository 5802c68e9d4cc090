import type { LookupAddress, LookupOptions } from "node:dns";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { isIP, type Socket } from "node:net";
import { ProblemError } from "../../errors/problem.js";
import { type Sniffed, sniffFormat } from "../../image/formats.js";
import { AddressPolicy } from "./address-policy.js";
import type { ResolvedAddress, Resolver } from "./resolver.js";

/**
 * Fetches a tenant's source image, safe by construction: the address
 * actually connected to is the one checked (the hostname is resolved through
 * the Resolver port, every address judged by the AddressPolicy, and the
 * socket handed only permitted ones, so DNS rebinding cannot reach an
 * internal address); every redirect hop is checked again, scheme, allowed
 * source and address; time and bytes are bounded while they pass.
 */

export interface SourceFetcherOptions {
  resolver: Resolver;
  /** CIDRs of on-premises origins the operator allows (`delivery.allowNetworks`). */
  allowNetworks?: readonly string[];
  /** http sources too; https only by default. */
  allowHttp?: boolean;
  /** TCP connect, plus the TLS handshake for https. */
  connectTimeoutMs: number;
  /** From the first request to the last byte, redirects included. */
  totalTimeoutMs: number;
  /** Source bytes, unless a fetch asks for less. */
  maxBytes: number;
  maxRedirects?: number;
  userAgent?: string;
  /** Certificates trusted for https origins besides the system's (on-premises CAs, tests). */
  ca?: string | Buffer | undefined;
}

/** What the caller cached from an earlier fetch, to revalidate it. */
export interface Validators {
  etag?: string | undefined;
  lastModified?: string | undefined;
}

export interface FetchRequest {
  url: string;
  /** The tenant's allowed sources: asked of the URL and of every redirect target. */
  isAllowedSource: (url: URL) => boolean;
  maxBytes?: number | undefined;
  validators?: Validators | undefined;
}

interface Fetched {
  /** The URL the source came from, after redirects. */
  url: string;
  redirects: number;
  /** The address the fetcher was connected to for the last hop. */
  address: string | undefined;
  etag: string | undefined;
  lastModified: string | undefined;
}

export type FetchResult =
  | (Fetched & { kind: "fetched"; bytes: Buffer; format: Sniffed; contentType: string | undefined })
  | (Fetched & { kind: "not-modified" });

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const DEFAULT_MAX_REDIRECTS = 5;
/** Enough for every signature sniffFormat knows, SVG's included. */
const SNIFF_BYTES = 4096;

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

export function sourceProblem(
  code:
    | "source-not-allowed"
    | "source-forbidden"
    | "source-not-found"
    | "source-too-large"
    | "source-error"
    | "source-timeout",
  detail: string,
  extras: Record<string, string | number | undefined> = {},
): ProblemError {
  return new ProblemError(code, detail, { extras });
}

export class SourceFetcher {
  private readonly policy: AddressPolicy;
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: SourceFetcherOptions) {
    this.policy = new AddressPolicy(options.allowNetworks);
    this.httpsAgent = new https.Agent({ keepAlive: true, ...(options.ca ? { ca: options.ca } : {}) });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /**
   * The source's bytes and sniffed format, or `not-modified` when the
   * validators still hold. Throws a ProblemError: source-not-allowed,
   * source-forbidden, source-not-found, source-too-large, source-timeout,
   * source-error, or unsupported-format when the bytes are no image.
   */
  async fetch(request: FetchRequest): Promise<FetchResult> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.totalTimeoutMs);
    try {
      return await this.follow(request, controller.signal);
    } catch (error) {
      if (error instanceof ProblemError) throw error;
      if (controller.signal.aborted) {
        throw sourceProblem(
          "source-timeout",
          `the source did not arrive within ${this.options.totalTimeoutMs} ms (the total time limit)`,
          { limit: "total", url: request.url },
        );
      }
      throw originFailure(error, request.url);
    } finally {
      clearTimeout(timer);
    }
  }

  private async follow(request: FetchRequest, signal: AbortSignal): Promise<FetchResult> {
    const maxRedirects = this.options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    let url = this.checkUrl(request.url, request);
    for (let redirects = 0; ; redirects++) {
      const { response, address } = await this.send(url, request.validators, signal);
      if (!REDIRECTS.has(response.statusCode ?? 0)) {
        return this.answer(response, { url: url.href, redirects, address }, request);
      }
      // Never read a redirect's body: an origin could stream one for ever.
      response.destroy();
      if (redirects >= maxRedirects) {
        throw sourceProblem("source-error", `the source redirected more than ${maxRedirects} times`, {
          url: request.url,
        });
      }
      url = this.checkUrl(redirectTarget(response, url), request);
    }
  }

  /** Scheme, the tenant's sources, and an address written in the URL (the resolver never sees those). */
  private checkUrl(raw: string, request: FetchRequest): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw sourceProblem("source-error", `the source URL '${raw}' is not a URL`);
    }
    const schemes = this.options.allowHttp ? ["https:", "http:"] : ["https:"];
    if (!schemes.includes(url.protocol)) {
      const allowed = this.options.allowHttp ? "http or https" : "https only";
      throw sourceProblem(
        "source-not-allowed",
        `${url.protocol} sources are not allowed (${allowed}): ${url.href}`,
        {
          url: url.href,
        },
      );
    }
    if (!request.isAllowedSource(url)) {
      throw sourceProblem(
        "source-not-allowed",
        `${url.href} is not under any of this account's allowed sources`,
        {
          url: url.href,
        },
      );
    }
    const literal = url.hostname.replace(/^\[(.*)\]$/, "$1");
    if (isIP(literal)) this.permitted(literal, [{ address: literal, family: isIP(literal) === 6 ? 6 : 4 }]);
    return url;
  }

  /** One hop: connects through the checked lookup, bounded by the connect limit. */
  private send(
    url: URL,
    validators: Validators | undefined,
    signal: AbortSignal,
  ): Promise<{ response: IncomingMessage; address: string | undefined }> {
    const secure = url.protocol === "https:";
    const limit = this.options.connectTimeoutMs;
    return new Promise((resolve, reject) => {
      const request = (secure ? https : http).request(url, {
        agent: secure ? this.httpsAgent : this.httpAgent,
        lookup: this.lookup,
        headers: requestHeaders(validators, this.options.userAgent),
        signal,
      });
      const timer = setTimeout(() => {
        const detail = `connecting to ${url.host} took longer than ${limit} ms (the connect time limit)`;
        request.destroy(sourceProblem("source-timeout", detail, { limit: "connect", url: url.href }));
      }, limit);
      request.once("socket", (socket) => whenConnected(socket, secure, () => clearTimeout(timer)));
      request.once("response", (response) => {
        clearTimeout(timer);
        resolve({ response, address: response.socket.remoteAddress });
      });
      request.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      request.end();
    });
  }

  /** The `lookup` every connection uses: resolve, judge, and hand the socket only permitted addresses. */
  private readonly lookup = (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    const family =
      options.family === 4 || options.family === "IPv4"
        ? 4
        : options.family === 6 || options.family === "IPv6"
          ? 6
          : 0;
    this.options.resolver.resolve(hostname).then(
      (addresses) => {
        let usable: ResolvedAddress[];
        try {
          usable = this.permitted(hostname, addresses).filter((a) => family === 0 || a.family === family);
          if (usable.length === 0)
            throw sourceProblem("source-error", `${hostname} has no IPv${family} address`);
        } catch (error) {
          callback(error as NodeJS.ErrnoException, "", 0);
          return;
        }
        const first = usable[0] as ResolvedAddress;
        if (options.all)
          callback(
            null,
            usable.map((a) => ({ address: a.address, family: a.family })),
          );
        else callback(null, first.address, first.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, "", 0),
    );
  };

  /** The addresses the fetcher may connect to; throws source-forbidden when there is none. */
  private permitted(hostname: string, addresses: readonly ResolvedAddress[]): ResolvedAddress[] {
    const judged = addresses.map((a) => ({ ...a, verdict: this.policy.judge(a.address) }));
    const usable = judged.filter((a) => a.verdict.permitted);
    const refused = judged.find((a) => !a.verdict.permitted);
    if (usable.length > 0 || !refused) {
      if (usable.length === 0) throw sourceProblem("source-error", `${hostname} resolves to no address`);
      return usable.map(({ address, family }) => ({ address, family }));
    }
    const { verdict } = refused;
    const embedded = verdict.embedded
      ? ` (${verdict.embedded.form}, carrying ${verdict.embedded.address})`
      : "";
    const named =
      hostname === refused.address ? refused.address : `${hostname} resolves to ${refused.address}`;
    throw sourceProblem(
      "source-forbidden",
      `${named}, a ${verdict.class} address${embedded}; sources are fetched from public addresses only (an operator can allow a network in delivery.allowNetworks)`,
      { host: hostname, address: refused.address, addressClass: verdict.class },
    );
  }

  private async answer(
    response: IncomingMessage,
    hop: { url: string; redirects: number; address: string | undefined },
    request: FetchRequest,
  ): Promise<FetchResult> {
    const status = response.statusCode ?? 0;
    const meta = { ...hop, etag: header(response, "etag"), lastModified: header(response, "last-modified") };
    const { validators } = request;
    if (status === 304 && (validators?.etag || validators?.lastModified)) {
      response.resume();
      return {
        kind: "not-modified",
        ...meta,
        etag: meta.etag ?? validators.etag,
        lastModified: meta.lastModified ?? validators.lastModified,
      };
    }
    if (status !== 200) {
      response.destroy();
      const code = status === 404 || status === 410 ? "source-not-found" : "source-error";
      throw sourceProblem(code, `the origin answered ${status} for ${hop.url}`, {
        originStatus: status,
        url: hop.url,
      });
    }
    const maxBytes = Math.min(request.maxBytes ?? this.options.maxBytes, this.options.maxBytes);
    const { bytes, format } = await readBody(response, maxBytes, hop.url);
    return { kind: "fetched", ...meta, bytes, format, contentType: header(response, "content-type") };
  }
}

function whenConnected(socket: Socket, secure: boolean, connected: () => void): void {
  // A kept-alive socket is already connected (and its TLS session established).
  if (!socket.connecting) connected();
  else socket.once(secure ? "secureConnect" : "connect", connected);
}

function requestHeaders(
  validators: Validators | undefined,
  userAgent: string | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {
    accept: "image/*,*/*;q=0.8",
    "user-agent": userAgent ?? "imgfleet",
  };
  if (validators?.etag) headers["if-none-match"] = validators.etag;
  if (validators?.lastModified) headers["if-modified-since"] = validators.lastModified;
  return headers;
}

function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function redirectTarget(response: IncomingMessage, from: URL): string {
  const location = header(response, "location");
  try {
    if (location) return new URL(location, from).href;
  } catch {
    // Falls through to the refusal below.
  }
  throw sourceProblem(
    "source-error",
    `the origin redirected ${from.href} without a usable Location ('${location ?? ""}')`,
    {
      originStatus: response.statusCode,
      url: from.href,
    },
  );
}

/** The body, counted while it streams (the download stops past the limit), and its sniffed format. */
async function readBody(
  response: IncomingMessage,
  maxBytes: number,
  url: string,
): Promise<{ bytes: Buffer; format: Sniffed }> {
  const tooLarge = (bytes: string) =>
    sourceProblem("source-too-large", `the source is ${bytes} bytes; at most ${maxBytes} are fetched`, {
      maxBytes,
      url,
    });
  const declared = Number(header(response, "content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.destroy();
    throw tooLarge(String(declared));
  }
  const chunks: Buffer[] = [];
  let total = 0;
  let format: Sniffed | undefined;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw tooLarge(`over ${maxBytes}`);
    chunks.push(chunk);
    // Refuse a page that is no image after its first bytes, not after all of them.
    if (format === undefined && total >= SNIFF_BYTES) format = sniff(Buffer.concat(chunks), url);
  }
  if (total === 0)
    throw sourceProblem("source-error", `the origin answered 200 with an empty body for ${url}`, { url });
  const bytes = Buffer.concat(chunks, total);
  return { bytes, format: format ?? sniff(bytes, url) };
}

function sniff(head: Buffer, url: string): Sniffed {
  const format = sniffFormat(head);
  if (format) return format;
  throw new ProblemError("unsupported-format", `the source at ${url} is not an image in any format we know`, {
    extras: { url },
  });
}

function originFailure(error: unknown, url: string): ProblemError {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "ENODATA") {
    return sourceProblem("source-error", `the source's host could not be resolved: ${message}`, { url });
  }
  return sourceProblem("source-error", `fetching the source failed: ${message}`, { url });
}
