/**
 * The fleet's internal data-path protocol, in one place: where a worker
 * fetches a job's staged input and posts its outcome on the API node that
 * staged it (paths), how each request signs itself with the cluster secret
 * (headers and signature), and how an outcome travels (its metadata,
 * versioned and checked, in a header; the image bytes as the body). The
 * worker's side is HttpDataPath beside this module; the API node's side is
 * the handler under src/api/internal/.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { INTERNAL_PREFIX } from "../contract/paths.js";
import { countWire as count, OutputInfoWire, WireProblemWire } from "../wire/shapes.js";
import { checkWire, type SameKeys, stamped, type WireRead } from "../wire/wire.js";
import type { JobOutcome, WorkerTimings } from "./job-outcome.js";

// ---- Paths ----------------------------------------------------------------------------------

/** Route patterns the API node serves. */
export const DATA_PATH_ROUTES = {
  staged: `${INTERNAL_PREFIX}/staged/:key`,
  results: `${INTERNAL_PREFIX}/results/:jobId`,
} as const;

export function stagedPath(key: string): string {
  return `${INTERNAL_PREFIX}/staged/${encodeURIComponent(key)}`;
}

export function resultPath(jobId: string): string {
  return `${INTERNAL_PREFIX}/results/${encodeURIComponent(jobId)}`;
}

/** A result is one output image: 8192² RGBA PNG at worst is ~270 MB; anything larger is not ours. */
export const MAX_RESULT_BYTES = 320 * 1024 * 1024;

// ---- Signature ------------------------------------------------------------------------------

/** How far a request's clock may be from ours: covers clock skew and a slow network, not replays. */
export const MAX_SKEW_MS = 30_000;
/** Nonces remembered to refuse replays within the skew window; a bound, not an expectation. */
const MAX_NONCES = 200_000;

export const HEADERS = {
  timestamp: "x-imgfleet-timestamp",
  nonce: "x-imgfleet-nonce",
  signature: "x-imgfleet-signature",
  /** On a refusal: why (a ClusterAuthFailure), for the worker's log. */
  authFailure: "x-imgfleet-auth",
  /** A job outcome's metadata; the image bytes travel as the body. */
  outcome: "x-imgfleet-outcome",
} as const;

/**
 * The headers a signature covers, in the order they enter the canonical
 * string: every header of ours that carries meaning (the outcome carries the
 * output format and the CPU that is billed). A new meaningful header must be
 * added here, or its requests are refused as "unsigned" (see verify).
 */
export const SIGNED_HEADERS = [HEADERS.timestamp, HEADERS.nonce, HEADERS.outcome] as const;
/** Our headers that may travel without being signed: the signature itself. */
const UNSIGNED_HEADERS: ReadonlySet<string> = new Set([HEADERS.signature]);
const OUR_HEADER_PREFIX = "x-imgfleet-";
/** The canonical string's version, also the signature's prefix, so nodes of another version say so. */
const SIGNATURE_VERSION = "v2";

export type ClusterAuthFailure =
  | "missing"
  | "stale"
  | "replayed"
  | "signature"
  | "version"
  | "unsigned"
  | "busy";

/** What a signature covers: the request line, our meaningful headers, and the body. */
export interface SignedRequest {
  method: string;
  /** Path and query, exactly as sent. */
  path: string;
  /** Our headers that carry meaning (SIGNED_HEADERS but the timestamp and nonce, which signing adds). */
  headers?: Record<string, string>;
  body?: Uint8Array;
}

function bodyHash(body: Uint8Array | undefined): string {
  return createHash("sha256")
    .update(body ?? new Uint8Array(0))
    .digest("hex");
}

/**
 * One line per part: version, method, path+query, each signed header as
 * `name:value` in SIGNED_HEADERS order (an absent one as `name:`, so moving
 * a value between headers or dropping one changes the string), body hash.
 */
export function canonicalString(request: SignedRequest, headers: Record<string, string | undefined>): string {
  const lines = [SIGNATURE_VERSION, request.method.toUpperCase(), request.path];
  for (const name of SIGNED_HEADERS) lines.push(`${name}:${headers[name] ?? ""}`);
  lines.push(bodyHash(request.body));
  return lines.join("\n");
}

function mac(secret: string, canonical: string): Buffer {
  return createHmac("sha256", secret).update(canonical).digest();
}

/**
 * The headers to send with one internal request between nodes: the request's
 * own meaningful headers plus a time, a fresh nonce and an HMAC (keyed by the
 * cluster secret) of the canonical string. Not a session: every request signs itself.
 */
export function signRequest(
  secret: string,
  request: SignedRequest,
  now = Date.now(),
): Record<string, string> {
  const headers: Record<string, string> = {
    ...request.headers,
    [HEADERS.timestamp]: String(now),
    [HEADERS.nonce]: randomBytes(16).toString("base64url"),
  };
  const signature = mac(secret, canonicalString(request, headers)).toString("base64url");
  return { ...headers, [HEADERS.signature]: `${SIGNATURE_VERSION}.${signature}` };
}

type IncomingHeaders = Record<string, string | string[] | undefined>;

/**
 * Checks internal requests: no header of ours outside the signature, the
 * signature in constant time, the timestamp within the skew, and a nonce
 * not seen before within that window (replay-safe).
 */
export class ClusterVerifier {
  /** Nonce → when it stops mattering (its timestamp + skew). Insertion order ≈ expiry order. */
  readonly #nonces = new Map<string, number>();

  constructor(
    private readonly secret: string,
    private readonly now: () => number = Date.now,
  ) {}

  verify(
    method: string,
    path: string,
    headers: IncomingHeaders,
    body?: Uint8Array,
  ): ClusterAuthFailure | null {
    const signed = signedValues(headers);
    const signature = one(headers[HEADERS.signature]);
    const timestamp = signed[HEADERS.timestamp];
    const nonce = signed[HEADERS.nonce];
    if (!timestamp || !nonce || !signature) return "missing";
    if (hasUnsignedHeader(headers)) return "unsigned";
    const at = Number(timestamp);
    const now = this.now();
    if (!Number.isFinite(at) || Math.abs(now - at) > MAX_SKEW_MS) return "stale";
    const [version, given] = signature.split(".", 2);
    if (version !== SIGNATURE_VERSION || given === undefined) return "version";
    const expected = mac(this.secret, canonicalString({ method, path, body }, signed));
    const givenBytes = Buffer.from(given, "base64url");
    if (givenBytes.length !== expected.length || !timingSafeEqual(givenBytes, expected)) return "signature";
    this.#forgetExpired(now);
    if (this.#nonces.has(nonce)) return "replayed";
    if (this.#nonces.size >= MAX_NONCES) return "busy";
    this.#nonces.set(nonce, at + MAX_SKEW_MS);
    return null;
  }

  #forgetExpired(now: number): void {
    for (const [nonce, until] of this.#nonces) {
      if (until > now) break;
      this.#nonces.delete(nonce);
    }
  }
}

/**
 * Our headers the signature does not cover: refused, so a header given
 * meaning later cannot travel unsigned by mistake (add it to SIGNED_HEADERS).
 */
export function hasUnsignedHeader(headers: IncomingHeaders): boolean {
  return Object.keys(headers).some((name) => {
    const lower = name.toLowerCase();
    return (
      lower.startsWith(OUR_HEADER_PREFIX) &&
      !UNSIGNED_HEADERS.has(lower) &&
      !(SIGNED_HEADERS as readonly string[]).includes(lower)
    );
  });
}

/** The signed headers' values; a repeated header is joined, so its signature cannot match a single value. */
function signedValues(headers: IncomingHeaders): Record<string, string | undefined> {
  const values: Record<string, string | undefined> = {};
  for (const name of SIGNED_HEADERS) {
    const value = headers[name];
    values[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return values;
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

// ---- Outcome --------------------------------------------------------------------------------

/*
 * What an outcome's header carries (version 1). Timings are strict: the
 * API node bills from them, so a time this version does not know would be
 * left off the bill in silence. The output's description tolerates (drops)
 * fields it does not know: they can only describe the image further.
 */
const WorkerTimingsWire = z.strictObject({ queueMs: count, fetchMs: count, processMs: count, cpuMs: count });
const _timingKeys: SameKeys<WorkerTimings, z.infer<typeof WorkerTimingsWire>> = true;
void _timingKeys;
const OutcomeMetaWire = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), info: OutputInfoWire, timings: WorkerTimingsWire }),
  z.object({ ok: z.literal(false), problem: WireProblemWire, timings: WorkerTimingsWire }),
]);

type OutcomeMeta = z.infer<typeof OutcomeMetaWire>;

export function outcomeHeader(outcome: JobOutcome): string {
  const meta: OutcomeMeta = outcome.ok
    ? { ok: true, info: outcome.info, timings: outcome.timings }
    : { ok: false, problem: outcome.problem, timings: outcome.timings };
  return Buffer.from(JSON.stringify(stamped(meta))).toString("base64url");
}

export function outcomeBody(outcome: JobOutcome): Buffer {
  return outcome.ok ? outcome.data : Buffer.alloc(0);
}

/** Rebuilds an outcome from its header and body; a rejection (not yet reported) when the header is not one. */
export function decodeOutcome(header: string | undefined, body: Buffer, peer: string): WireRead<JobOutcome> {
  const origin = { source: "data-path-outcome" as const, from: `peer ${peer}` };
  const read = checkWire(OutcomeMetaWire, Buffer.from(header ?? "", "base64url"), origin);
  if (!read.ok) return read;
  const meta = read.value;
  return { ok: true, value: meta.ok ? { ...meta, data: body } : meta };
}
