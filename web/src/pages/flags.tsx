import { useState } from "preact/hooks";
import type { AuditEntry, FlagView } from "../../../src/contract/admin.js";
import type { Page } from "../../../src/contract/common.js";
import { del, get, put } from "../api.js";
import { type Column, DataTable } from "../components/data-table.js";
import { Badge, Empty, Loaded, PageHeader, ProblemBox, useConfirm } from "../components/ui.js";
import { ago, dateTime } from "../format.js";
import { useAction, useResource } from "../hooks.js";

/** Feature flags: default, percentage rollout, per-tenant overrides, and who changed what when. */
export function FlagsPage() {
  const flags = useResource("flags", () => get<{ items: FlagView[] }>("/flags"));
  const history = useResource("flag-history", () => get<Page<AuditEntry>>("/audit?action=flag&limit=50"));
  const changed = async () => {
    await Promise.all([flags.reload(), history.reload()]);
  };
  return (
    <section>
      <PageHeader title="Flags" />
      <Loaded resource={flags} what="Loading flags">
        {({ items }) =>
          items.length === 0 ? (
            <Empty>No feature flags.</Empty>
          ) : (
            <div class="stack">
              {items.map((f) => (
                <FlagCard key={f.name} flag={f} onChanged={changed} />
              ))}
            </div>
          )
        }
      </Loaded>
      <section class="card" aria-labelledby="flag-history-title">
        <h2 id="flag-history-title">Who changed what, when</h2>
        <Loaded resource={history} what="Loading the history">
          {({ items }) =>
            items.length === 0 ? (
              <Empty>No flag has been changed yet.</Empty>
            ) : (
              <DataTable rows={items} columns={HISTORY_COLUMNS} rowKey={(e) => e.id} testId="flag-history" />
            )
          }
        </Loaded>
      </section>
    </section>
  );
}

const HISTORY_COLUMNS: Column<AuditEntry>[] = [
  { header: "When", cell: (e) => <span title={dateTime(e.at)}>{ago(e.at)}</span> },
  { header: "Who", cell: (e) => <code>{e.actor}</code> },
  { header: "Flag", cell: (e) => e.target },
  {
    header: "Change",
    cell: (e) => `${e.action}${e.tenantId ? ` for ${e.tenantId}` : ""} ${describe(e.details)}`,
  },
];

function describe(details: Record<string, unknown>): string {
  const parts = Object.entries(details).map(
    ([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`,
  );
  return parts.length ? `(${parts.join(", ")})` : "";
}

function FlagCard({ flag, onChanged }: { flag: FlagView; onChanged: () => Promise<void> }) {
  return (
    <article class="card flag" data-flag={flag.name}>
      <header class="section-head">
        <h2>{flag.name}</h2>
        <Badge tone={flag.default ? "green" : "grey"}>default {flag.default ? "on" : "off"}</Badge>
        {flag.percentage > 0 ? <Badge tone="blue">{flag.percentage}% of tenants</Badge> : null}
        {!flag.known ? <Badge tone="amber">unknown to this node</Badge> : null}
      </header>
      <p>{flag.description || <span class="muted">No description.</span>}</p>
      <p class="muted small">
        {flag.updatedAt
          ? `Changed ${dateTime(flag.updatedAt)} by ${flag.updatedBy}`
          : "Built-in settings, never changed"}
      </p>
      <RolloutForm flag={flag} onChanged={onChanged} />
      <h3>Tenant overrides</h3>
      <TenantOverrides flag={flag} onChanged={onChanged} />
    </article>
  );
}

const flagPath = (flag: FlagView) => `/flags/${encodeURIComponent(flag.name)}`;

/** The default, the rollout percentage, and the reset to built-in settings (confirmed first). */
function RolloutForm({ flag, onChanged }: { flag: FlagView; onChanged: () => Promise<void> }) {
  const [percentage, setPercentage] = useState(String(flag.percentage));
  const [dialog, confirm] = useConfirm();
  const save = useAction(async (settings: { default?: boolean; percentage?: number }) => {
    await put(flagPath(flag), settings);
    await onChanged();
  });
  const reset = useAction(async () => {
    const ok = await confirm({
      title: `Reset ${flag.name}?`,
      body: (
        <p>
          Its default, percentage and every tenant override are removed: everyone gets the built-in default.
        </p>
      ),
      action: "Reset flag",
    });
    if (!ok) return;
    await del(flagPath(flag));
    await onChanged();
  });
  return (
    <>
      <div class="inline-form">
        <button type="button" onClick={() => save.run({ default: !flag.default })} disabled={save.busy}>
          Turn default {flag.default ? "off" : "on"}
        </button>
        <div class="field">
          <label for={`pct-${flag.name}`}>Rollout percentage</label>
          <input
            id={`pct-${flag.name}`}
            inputMode="decimal"
            value={percentage}
            onInput={(e) => setPercentage((e.target as HTMLInputElement).value)}
          />
        </div>
        <button
          type="button"
          onClick={() => save.run({ percentage: Number(percentage) })}
          disabled={save.busy}
        >
          Set percentage
        </button>
        {flag.stored ? (
          <button type="button" class="danger" onClick={() => reset.run()}>
            Reset to built-in
          </button>
        ) : null}
      </div>
      <ProblemBox error={save.error ?? reset.error} />
      {dialog}
    </>
  );
}

/** Per-tenant overrides: the list with a remove button each, and a form to add one. */
function TenantOverrides({ flag, onChanged }: { flag: FlagView; onChanged: () => Promise<void> }) {
  const [tenant, setTenant] = useState("");
  const override = useAction(async (tenantId: string, enabled: boolean | null) => {
    const path = `${flagPath(flag)}/tenants/${encodeURIComponent(tenantId)}`;
    if (enabled === null) await del(path);
    else await put(path, { enabled });
    setTenant("");
    await onChanged();
  });
  const overrides = Object.entries(flag.tenants);
  const chosen = tenant.trim();
  return (
    <>
      {overrides.length === 0 ? (
        <p class="muted">None: every tenant follows the percentage and the default.</p>
      ) : (
        <ul class="overrides">
          {overrides.map(([id, on]) => (
            <li key={id}>
              <code>{id}</code> <Badge tone={on ? "green" : "grey"}>{on ? "on" : "off"}</Badge>{" "}
              <button type="button" class="link" onClick={() => override.run(id, null)}>
                remove override
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void override.run(chosen, true);
        }}
      >
        <div class="field">
          <label for={`ovr-${flag.name}`}>Tenant id</label>
          <input
            id={`ovr-${flag.name}`}
            placeholder="ten_…"
            value={tenant}
            onInput={(e) => setTenant((e.target as HTMLInputElement).value)}
          />
        </div>
        <button type="submit" disabled={override.busy || !chosen}>
          Turn on for this tenant
        </button>
        <button type="button" disabled={override.busy || !chosen} onClick={() => override.run(chosen, false)}>
          Turn off for this tenant
        </button>
      </form>
      <ProblemBox error={override.error} />
    </>
  );
}
