import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api.js";

export interface Resource<T> {
  data: T | undefined;
  error: ApiError | null;
  loading: boolean;
  /** Loads again; `poll` marks an automatic refresh (not activity for the idle timeout). */
  reload: (poll?: boolean) => Promise<void>;
}

/**
 * Loads `load()` when `key` changes; the newest answer wins (a slow old one
 * never overwrites it). With `refreshMs`, refreshes while the page is visible.
 */
export function useResource<T>(
  key: string,
  load: (poll: boolean) => Promise<T>,
  refreshMs?: number,
): Resource<T> {
  const [state, setState] = useState<{ data: T | undefined; error: ApiError | null; loading: boolean }>({
    data: undefined,
    error: null,
    loading: true,
  });
  const generation = useRef(0);
  const loader = useRef(load);
  loader.current = load;

  const reload = useCallback(async (poll = false) => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await loader.current(poll);
      if (mine === generation.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === generation.current)
        setState((s) => ({ data: s.data, error: asApiError(error), loading: false }));
    }
  }, []);

  useEffect(() => {
    setState({ data: undefined, error: null, loading: true });
    void reload();
    if (!refreshMs) return;
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") void reload(true);
    }, refreshMs);
    return () => clearInterval(timer);
  }, [key, refreshMs, reload]);

  return { ...state, reload };
}

export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError(0, { title: "Unexpected error", detail: String((error as Error)?.message ?? error) });
}

/** Runs an action (a write) with its own busy flag and error, for buttons and forms. */
export function useAction<A extends unknown[], R>(action: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = useCallback(
    async (...args: A): Promise<R | undefined> => {
      setBusy(true);
      setError(null);
      try {
        return await action(...args);
      } catch (e) {
        setError(asApiError(e));
        return undefined;
      } finally {
        setBusy(false);
      }
    },
    [action],
  );
  return { run, busy, error, clearError: () => setError(null) };
}
