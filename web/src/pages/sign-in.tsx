import { useEffect, useRef, useState } from "preact/hooks";
import { type ApiError, type Problem, post, type SessionView } from "../api.js";
import { ProblemBox } from "../components/ui.js";
import { asApiError } from "../hooks.js";

/** Sign-in with an admin key, exchanged for a session cookie; the key itself is not kept by the page. */
export function SignInPage({
  onSignedIn,
  initialError,
}: {
  onSignedIn: (session: SessionView) => void;
  initialError: ApiError | null;
}) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(initialError);

  useEffect(() => {
    document.title = "Sign in · imgfleet console";
  }, []);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await post<SessionView>("/session", { adminKey: key });
      setKey("");
      onSignedIn(session);
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in" id="main">
      <form onSubmit={submit} class="card narrow" aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">imgfleet console</h1>
        <p class="muted">
          Sign in with an admin key: the one printed at the first start, or one made with{" "}
          <code>imgfleet admin-keys create</code>.
        </p>
        <label for="admin-key">Admin key</label>
        <input
          id="admin-key"
          name="adminKey"
          type="password"
          autoComplete="off"
          spellcheck={false}
          placeholder="imf_…"
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          required
        />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <ProblemBox error={error} />
      </form>
    </main>
  );
}

const ENDED: Record<string, string> = {
  idle: "Your session ended after a period without activity.",
  lifetime: "Your session reached its maximum lifetime.",
  "signed-out": "You are signed out.",
  "key-revoked": "The admin key this session used was revoked or has expired.",
};

/** The clear page when a session ends: why, and one button to sign in again (the route is kept). */
export function SessionEndedPage({ problem, onSignIn }: { problem: Problem; onSignIn: () => void }) {
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    document.title = "Session ended · imgfleet console";
    button.current?.focus();
  }, []);
  return (
    <main class="sign-in" id="main">
      <section class="card narrow" aria-labelledby="ended-title">
        <h1 id="ended-title">Session ended</h1>
        <p data-testid="ended-reason">
          {ENDED[problem.reason ?? ""] ?? problem.detail ?? "Your session has ended."}
        </p>
        <p class="muted">
          Nothing was changed after the session ended. Sign in again to continue where you were.
        </p>
        <button type="button" class="primary" ref={button} onClick={onSignIn}>
          Sign in again
        </button>
      </section>
    </main>
  );
}
