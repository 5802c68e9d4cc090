import type { FastifyRequest } from "fastify";

/** The console's session cookie. Its value is the session id; the server keeps only its hash. */
export const SESSION_COOKIE = "imgfleet_session";

/** 32 random bytes in base64url: what `newSessionId` makes, checked before any lookup. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/** The session id from a Cookie header, or null when there is none (or it is not one we issue). */
export function sessionIdFrom(cookieHeader: string | undefined): string | null {
  if (!cookieHeader) return null;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return SESSION_ID.test(value) ? value : null;
  }
  return null;
}

/** Whether the request carries our cookie at all (even a malformed value): it then means the console. */
export function hasSessionCookie(cookieHeader: string | undefined): boolean {
  return cookieHeader !== undefined && new RegExp(`(^|;)\\s*${SESSION_COOKIE}=`).test(cookieHeader);
}

/**
 * Whether the browser reached us over TLS: directly, or through a proxy that
 * says so. Trusting `X-Forwarded-Proto` here can only make the cookie stricter.
 */
export function cameOverTls(request: FastifyRequest): boolean {
  if (request.protocol === "https") return true;
  const forwarded = request.headers["x-forwarded-proto"];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]?.trim().toLowerCase();
  return first === "https";
}

/**
 * `Set-Cookie` for a session: HttpOnly (scripts cannot read it), SameSite=Strict
 * (no other site's page makes the browser send it), Path=/ (the console and
 * the admin API), Secure over TLS. `maxAgeS` 0 clears it.
 */
export function sessionCookie(value: string, options: { secure: boolean; maxAgeS: number }): string {
  const parts = [
    `${SESSION_COOKIE}=${value}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Strict",
    `Max-Age=${Math.max(0, Math.floor(options.maxAgeS))}`,
  ];
  if (options.secure) parts.push("Secure");
  return parts.join("; ");
}

export function clearSessionCookie(secure: boolean): string {
  return sessionCookie("", { secure, maxAgeS: 0 });
}
