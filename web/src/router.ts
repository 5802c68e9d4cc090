import { useEffect, useState } from "preact/hooks";

/**
 * The route is the URL: `/console/<page>/<id>?<options>`, so every view can be
 * bookmarked and reloaded (the server answers index.html for any path under
 * /console). Links are ordinary <a href>; clicks on them are turned into
 * history pushes so the app does not reload.
 */
export const BASE = "/console";

export interface Route {
  /** Path segments after /console: `["tenants", "ten_1"]`. */
  parts: string[];
  params: URLSearchParams;
}

function current(): Route {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "/";
  return {
    parts: path.split("/").filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(location.search),
  };
}

const listeners = new Set<() => void>();

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = to.startsWith(BASE) ? to : `${BASE}${to.startsWith("/") ? "" : "/"}${to}`;
  if (url === location.pathname + location.search) return;
  if (options.replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  for (const l of listeners) l();
  if (!options.replace) window.scrollTo(0, 0);
}

/** Changes query options of the current route (replacing the history entry: typing is not navigation). */
export function setParams(changes: Record<string, string | null | undefined>): void {
  const params = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === "") params.delete(k);
    else params.set(k, v);
  }
  const search = params.toString();
  navigate(`${location.pathname}${search ? `?${search}` : ""}`, { replace: true });
}

export function href(path: string): string {
  return `${BASE}${path.startsWith("/") ? "" : "/"}${path}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return route;
}

/** One listener for the whole document: same-origin /console links navigate in place. */
export function interceptLinks(): void {
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey)
      return;
    const anchor = (event.target as Element | null)?.closest?.("a");
    if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
}
