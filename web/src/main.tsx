import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import {
  type ApiError,
  del,
  get,
  onSessionEnded,
  type Problem,
  type SessionView,
  setSession,
} from "./api.js";
import { asApiError } from "./hooks.js";
import { AlertsPage } from "./pages/alerts.js";
import { FlagsPage } from "./pages/flags.js";
import { FleetPage } from "./pages/fleet.js";
import { OverviewPage } from "./pages/overview.js";
import { PlaygroundPage } from "./pages/playground.js";
import { SettingsPage } from "./pages/settings.js";
import { SessionEndedPage, SignInPage } from "./pages/sign-in.js";
import { TenantPage } from "./pages/tenant.js";
import { TenantsPage } from "./pages/tenants.js";
import { href, interceptLinks, type Route, useRoute } from "./router.js";
import "./styles.css";

type State =
  | { kind: "checking" }
  | { kind: "signed-out"; error: ApiError | null }
  | { kind: "ended"; problem: Problem }
  | { kind: "signed-in"; session: SessionView };

const NAV: { path: string; label: string; page: string }[] = [
  { path: "/", label: "Overview", page: "" },
  { path: "/fleet", label: "Fleet", page: "fleet" },
  { path: "/tenants", label: "Tenants", page: "tenants" },
  { path: "/alerts", label: "Alerts", page: "alerts" },
  { path: "/flags", label: "Flags", page: "flags" },
  { path: "/settings", label: "Settings", page: "settings" },
  { path: "/playground", label: "Playground", page: "playground" },
];

/** The session, as the server knows it: checked at load, ended whenever a call says so. */
function useSessionState(): [State, (s: State) => void] {
  const [state, setState] = useState<State>({ kind: "checking" });
  useEffect(() => {
    onSessionEnded((problem) => {
      setSession(null);
      setState(
        problem.type === "/problems/session-expired"
          ? { kind: "ended", problem }
          : { kind: "signed-out", error: null },
      );
    });
    get<SessionView>("/session")
      .then((session) => {
        setSession(session);
        setState({ kind: "signed-in", session });
      })
      .catch((error: unknown) => {
        const e = asApiError(error);
        if (e.problem.type === "/problems/session-expired") setState({ kind: "ended", problem: e.problem });
        else setState({ kind: "signed-out", error: e.status === 401 ? null : e });
      });
  }, []);
  return [state, setState];
}

function App() {
  const route = useRoute();
  const [state, setState] = useSessionState();
  const signedIn = (session: SessionView) => {
    setSession(session);
    setState({ kind: "signed-in", session });
  };
  if (state.kind === "checking") return <p class="loading center">Loading the console…</p>;
  if (state.kind === "signed-out") return <SignInPage onSignedIn={signedIn} initialError={state.error} />;
  if (state.kind === "ended") {
    return (
      <SessionEndedPage
        problem={state.problem}
        onSignIn={() => setState({ kind: "signed-out", error: null })}
      />
    );
  }
  const signOut = async () => {
    try {
      await del("/session");
    } finally {
      setSession(null);
      setState({
        kind: "ended",
        problem: { type: "/problems/session-expired", reason: "signed-out", detail: "You signed out." },
      });
    }
  };
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Nav route={route} session={state.session} onSignOut={signOut} />
      <main id="main" tabIndex={-1}>
        <Page route={route} session={state.session} />
      </main>
    </div>
  );
}

function Nav({ route, session, onSignOut }: { route: Route; session: SessionView; onSignOut: () => void }) {
  return (
    <nav class="nav" aria-label="Console">
      <a class="brand" href={href("/")}>
        imgfleet
      </a>
      <ul>
        {NAV.map((item) => (
          <li key={item.path}>
            <a
              href={href(item.path)}
              aria-current={(route.parts[0] ?? "") === item.page ? "page" : undefined}
            >
              {item.label}
            </a>
          </li>
        ))}
      </ul>
      <div class="who">
        <span class="muted small" title="the admin key this session signed in with">
          {session.keyId}
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </div>
    </nav>
  );
}

function Page({ route, session }: { route: Route; session: SessionView }) {
  const [page, id] = route.parts;
  switch (page) {
    case undefined:
    case "overview":
      return <OverviewPage route={route} />;
    case "fleet":
      return <FleetPage route={route} />;
    case "tenants":
      return id ? <TenantPage id={id} route={route} /> : <TenantsPage route={route} />;
    case "alerts":
      return <AlertsPage route={route} />;
    case "flags":
      return <FlagsPage />;
    case "settings":
      return <SettingsPage session={session} />;
    case "playground":
      return <PlaygroundPage route={route} />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no console page <code>{route.parts.join("/")}</code>.{" "}
            <a href={href("/")}>Go to the overview</a>.
          </p>
        </section>
      );
  }
}

interceptLinks();
const root = document.getElementById("app");
if (root) render(<App />, root);
