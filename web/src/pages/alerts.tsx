import { useState } from "preact/hooks";
import type { Alert, ChannelView, DeliveryResult, OpsEvent } from "../../../src/contract/admin.js";
import type { Page } from "../../../src/contract/common.js";
import { del, get, post, query } from "../api.js";
import { type Column, DataTable } from "../components/data-table.js";
import { REFRESH_MS } from "../components/series-card.js";
import { Badge, Empty, Loaded, PageHeader, ProblemBox, useConfirm } from "../components/ui.js";
import { ago, dateTime } from "../format.js";
import { useAction, useResource } from "../hooks.js";
import { href, type Route } from "../router.js";

const TABS = [
  { id: "firing", label: "Open" },
  { id: "resolved", label: "Resolved" },
  { id: "channels", label: "Notification channels" },
  { id: "events", label: "Event log" },
] as const;

/** Alerts with their runbook lines and acknowledgement, notification channels, and the event log. */
export function AlertsPage({ route }: { route: Route }) {
  const tab = route.params.get("tab") ?? "firing";
  return (
    <section>
      <PageHeader title="Alerts" />
      <nav class="tabs" aria-label="Alert views">
        {TABS.map((t) => (
          <a
            key={t.id}
            href={href(`/alerts${t.id === "firing" ? "" : `?tab=${t.id}`}`)}
            aria-current={tab === t.id ? "page" : undefined}
          >
            {t.label}
          </a>
        ))}
      </nav>
      {tab === "channels" ? (
        <Channels />
      ) : tab === "events" ? (
        <Events route={route} />
      ) : (
        <AlertList state={tab === "resolved" ? "resolved" : "firing"} />
      )}
    </section>
  );
}

function AlertList({ state }: { state: "firing" | "resolved" }) {
  const alerts = useResource(
    `alerts-${state}`,
    (poll) => get<Page<Alert>>(`/alerts?state=${state}&limit=100`, { poll }),
    REFRESH_MS,
  );
  const ack = useAction(async (id: string) => {
    await post(`/alerts/${id}/ack`, {});
    await alerts.reload();
  });
  return (
    <>
      <ProblemBox error={ack.error} onDismiss={ack.clearError} />
      <Loaded resource={alerts} what="Loading alerts">
        {({ items }) =>
          items.length === 0 ? (
            <Empty>
              {state === "firing" ? "No alert is open. All clear." : "No alert has resolved yet."}
            </Empty>
          ) : (
            <ul class="alerts">
              {items.map((a) => (
                <li key={a.id} class={`card alert ${a.severity}`} data-rule={a.rule}>
                  <div class="alert-head">
                    <Badge tone={a.severity === "critical" ? "red" : "amber"}>{a.severity}</Badge>
                    <strong>{a.rule}</strong>
                    <span class="muted">on {a.subject}</span>
                    <span class="muted small">
                      since {dateTime(a.startedAt)}
                      {a.resolvedAt ? `, resolved ${dateTime(a.resolvedAt)}` : ""}
                    </span>
                  </div>
                  <p class="summary">{a.summary}</p>
                  <p class="runbook">
                    <span class="label">What to do:</span> {a.runbook}
                  </p>
                  {a.ackedBy ? (
                    <p class="acked" data-testid="acked">
                      Acknowledged by <code>{a.ackedBy}</code> at {dateTime(a.ackedAt)}
                    </p>
                  ) : a.state === "firing" ? (
                    <button type="button" onClick={() => ack.run(a.id)} disabled={ack.busy}>
                      Acknowledge
                    </button>
                  ) : null}
                </li>
              ))}
            </ul>
          )
        }
      </Loaded>
    </>
  );
}

function Channels() {
  const channels = useResource("channels", () => get<{ items: ChannelView[] }>("/notification-channels"));
  const [results, setResults] = useState<DeliveryResult[] | null>(null);
  const [dialog, confirm] = useConfirm();
  const test = useAction(async (id?: string) => {
    setResults(null);
    const r = await post<{ items: DeliveryResult[] }>(
      id ? `/notification-channels/${id}/test` : "/notification-channels/test",
      {},
    );
    setResults(r.items);
  });
  const remove = useAction(async (c: ChannelView) => {
    const ok = await confirm({
      title: `Remove channel ${c.name}?`,
      body: <p>Alerts will no longer be sent to {c.url}.</p>,
      action: "Remove channel",
    });
    if (!ok) return;
    await del(`/notification-channels/${c.id}`);
    await channels.reload();
  });
  const columns = channelColumns({ test: (c) => test.run(c.id), remove: remove.run, testing: test.busy });
  return (
    <>
      <NewChannelForm onAdded={() => channels.reload()} />
      <ProblemBox error={test.error ?? remove.error} />
      <Loaded resource={channels} what="Loading channels">
        {({ items }) =>
          items.length === 0 ? (
            <Empty>
              No notification channel: alerts are only visible here and in the CLI. Add a webhook above.
            </Empty>
          ) : (
            <DataTable rows={items} columns={columns} rowKey={(c) => c.id} />
          )
        }
      </Loaded>
      <button type="button" onClick={() => test.run()} disabled={test.busy}>
        Send a test to every channel
      </button>
      {results ? <DeliveryResults results={results} /> : null}
      {dialog}
    </>
  );
}

function channelColumns(actions: {
  test: (c: ChannelView) => void;
  remove: (c: ChannelView) => void;
  testing: boolean;
}): Column<ChannelView>[] {
  return [
    { header: "Name", cell: (c) => c.name },
    { header: "Kind", cell: (c) => c.kind },
    { header: "Where", cell: (c) => c.url },
    { header: "Signed", cell: (c) => (c.signed ? "yes" : "no") },
    { header: "From", cell: (c) => c.source },
    {
      header: <span class="sr-only">Actions</span>,
      class: "actions-cell",
      cell: (c) => (
        <>
          <button type="button" onClick={() => actions.test(c)} disabled={actions.testing}>
            Send test
          </button>
          {c.source === "api" ? (
            <button type="button" class="danger" onClick={() => actions.remove(c)}>
              Remove
            </button>
          ) : null}
        </>
      ),
    },
  ];
}

function DeliveryResults({ results }: { results: DeliveryResult[] }) {
  return (
    <ul class="results" aria-live="polite">
      {results.map((r) => (
        <li key={r.channel}>
          <Badge tone={r.status === "delivered" ? "green" : "red"}>{r.status}</Badge> {r.name}
          {r.responseStatus ? ` (HTTP ${r.responseStatus})` : ""}
          {r.error ? `: ${r.error}` : ""}
        </li>
      ))}
    </ul>
  );
}

function NewChannelForm({ onAdded }: { onAdded: () => void }) {
  const empty = { name: "", kind: "webhook", url: "", secret: "" };
  const [form, setForm] = useState(empty);
  const add = useAction(async () => {
    await post("/notification-channels", { ...form, secret: form.secret || undefined });
    setForm(empty);
    onAdded();
  });
  const set = (k: keyof typeof form) => (e: Event) =>
    setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <form
      class="card inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        void add.run();
      }}
    >
      <h2>Add a channel</h2>
      <div class="field">
        <label for="ch-name">Name</label>
        <input id="ch-name" required value={form.name} onInput={set("name")} />
      </div>
      <div class="field">
        <label for="ch-kind">Kind</label>
        <select id="ch-kind" value={form.kind} onChange={set("kind")}>
          <option value="webhook">webhook (imgfleet JSON, signed)</option>
          <option value="slack">slack-compatible</option>
        </select>
      </div>
      <div class="field wide">
        <label for="ch-url">URL</label>
        <input
          id="ch-url"
          required
          type="url"
          placeholder="https://…"
          value={form.url}
          onInput={set("url")}
        />
      </div>
      <div class="field">
        <label for="ch-secret">Signing secret (optional)</label>
        <input
          id="ch-secret"
          type="password"
          autoComplete="off"
          value={form.secret}
          onInput={set("secret")}
        />
      </div>
      <button type="submit" class="primary" disabled={add.busy}>
        Add channel
      </button>
      <ProblemBox error={add.error} />
    </form>
  );
}

const EVENT_COLUMNS: Column<OpsEvent>[] = [
  { header: "When", cell: (e) => <span title={dateTime(e.at)}>{ago(e.at)}</span> },
  {
    header: "Kind",
    cell: (e) => <a href={href(`/alerts?tab=events&kind=${encodeURIComponent(e.kind)}`)}>{e.kind}</a>,
  },
  { header: "Node", cell: (e) => e.node ?? "—" },
  { header: "What happened", cell: (e) => e.message },
];

function Events({ route }: { route: Route }) {
  const kind = route.params.get("kind") ?? "";
  const events = useResource(
    `events-${kind}`,
    (poll) => get<Page<OpsEvent>>(`/events${query({ kind, limit: 200 })}`, { poll }),
    REFRESH_MS,
  );
  return (
    <Loaded resource={events} what="Loading the event log">
      {({ items }) =>
        items.length === 0 ? (
          <Empty>No event recorded{kind ? ` of kind ${kind}` : ""}.</Empty>
        ) : (
          <DataTable rows={items} columns={EVENT_COLUMNS} rowKey={(e) => e.id} />
        )
      }
    </Loaded>
  );
}
