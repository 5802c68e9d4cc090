import { useEffect, useState } from "preact/hooks";
import type { Tenant } from "../../../src/contract/admin.js";
import { OUTPUT_FORMATS } from "../../../src/contract/vocabulary.js";
import { del, get, patch, post } from "../api.js";
import { Badge, Loaded, PageHeader, ProblemBox, useConfirm } from "../components/ui.js";
import { dateTime } from "../format.js";
import { useAction, useResource } from "../hooks.js";
import { href, type Route } from "../router.js";
import { TenantKeys } from "./tenant-keys.js";
import { TenantUsage } from "./tenant-usage.js";
import { STATUS_TONE } from "./tenants.js";

type Change = "suspend" | "resume" | "delete";

/** What each status change means for the tenant's requests, asked before it is made (resume asks nothing). */
const CONFIRMS: Partial<Record<Change, { body: string; action: string }>> = {
  suspend: {
    body: "Every request with its keys is refused (403) until it is resumed. Its keys and usage are kept.",
    action: "Suspend",
  },
  delete: {
    body: "The tenant is soft-deleted and all its keys are revoked at once. Its usage stays for billing.",
    action: "Delete tenant",
  },
};

/** One tenant: status and limits, its keys, its usage and cost. */
export function TenantPage({ id, route }: { id: string; route: Route }) {
  const tenant = useResource(`tenant-${id}`, () => get<Tenant>(`/tenants/${encodeURIComponent(id)}`));
  const [dialog, confirm] = useConfirm();
  const act = useAction(async (change: Change) => {
    const t = tenant.data;
    if (!t) return;
    const asked = CONFIRMS[change];
    const title = `${change === "delete" ? "Delete" : "Suspend"} ${t.name}?`;
    if (asked && !(await confirm({ title, body: <p>{asked.body}</p>, action: asked.action }))) return;
    if (change === "delete") await del(`/tenants/${t.id}`);
    else await post(`/tenants/${t.id}/${change}`);
    await tenant.reload();
  });
  return (
    <section>
      <p class="crumbs">
        <a href={href("/tenants")}>Tenants</a> /
      </p>
      <Loaded resource={tenant} what="Loading the tenant">
        {(t) => (
          <>
            <PageHeader title={t.name}>
              <StatusActions tenant={t} busy={act.busy} onChange={(c) => act.run(c)} />
            </PageHeader>
            <p class="muted">
              <code>{t.id}</code> · created {dateTime(t.createdAt)} · changed {dateTime(t.updatedAt)}
            </p>
            <ProblemBox error={act.error} onDismiss={act.clearError} />
            <LimitsForm tenant={t} onSaved={() => tenant.reload()} />
            {t.status !== "deleted" ? <TenantKeys tenantId={t.id} /> : null}
            <TenantUsage tenantId={t.id} route={route} />
          </>
        )}
      </Loaded>
      {dialog}
    </section>
  );
}

function StatusActions({
  tenant: t,
  busy,
  onChange,
}: {
  tenant: Tenant;
  busy: boolean;
  onChange: (c: Change) => void;
}) {
  return (
    <>
      <Badge tone={STATUS_TONE[t.status]}>{t.status}</Badge>
      {t.status === "active" ? (
        <button type="button" onClick={() => onChange("suspend")} disabled={busy}>
          Suspend
        </button>
      ) : null}
      {t.status === "suspended" ? (
        <button type="button" onClick={() => onChange("resume")} disabled={busy}>
          Resume
        </button>
      ) : null}
      {t.status !== "deleted" ? (
        <button type="button" class="danger" onClick={() => onChange("delete")} disabled={busy}>
          Delete
        </button>
      ) : null}
    </>
  );
}

type LimitsDraft = ReturnType<typeof draftOf>;
type TextField = "name" | "ratePerSecond" | "burst" | "maxInFlight" | "maxInputBytes";

/** The form's text as typed, from the tenant as stored. */
function draftOf(tenant: Tenant) {
  return {
    name: tenant.name,
    ratePerSecond: String(tenant.ratePerSecond),
    burst: String(tenant.burst),
    maxInFlight: String(tenant.maxInFlight),
    maxInputBytes: tenant.maxInputBytes === null ? "" : String(tenant.maxInputBytes),
    formats: tenant.outputFormats,
  };
}

function LimitsForm({ tenant, onSaved }: { tenant: Tenant; onSaved: () => void }) {
  const [form, setForm] = useState(() => draftOf(tenant));
  const [saved, setSaved] = useState(false);
  useEffect(() => setForm(draftOf(tenant)), [tenant]);
  const change = (next: LimitsDraft) => {
    setSaved(false);
    setForm(next);
  };
  const save = useAction(async () => {
    await patch(`/tenants/${tenant.id}`, {
      name: form.name,
      ratePerSecond: Number(form.ratePerSecond),
      burst: Number(form.burst),
      maxInFlight: Number(form.maxInFlight),
      maxInputBytes: form.maxInputBytes.trim() === "" ? null : Number(form.maxInputBytes),
      outputFormats: form.formats,
    });
    setSaved(true);
    onSaved();
  });
  const field = (key: TextField, label: string, hint?: string) => (
    <LimitField
      id={key}
      label={label}
      hint={hint}
      value={form[key]}
      onInput={(v) => change({ ...form, [key]: v })}
    />
  );
  return (
    <form
      class="card"
      aria-labelledby="limits-title"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <h2 id="limits-title">Name and limits</h2>
      <div class="fields">
        {field("name", "Name")}
        {field("ratePerSecond", "Requests per second")}
        {field("burst", "Burst")}
        {field("maxInFlight", "Requests in flight")}
        {field("maxInputBytes", "Largest upload (bytes)", "the node's limit")}
      </div>
      <FormatChecks formats={form.formats} onChange={(formats) => change({ ...form, formats })} />
      <button type="submit" class="primary" disabled={save.busy}>
        Save limits
      </button>
      {saved ? <span class="ok"> Saved.</span> : null}
      <ProblemBox error={save.error} />
    </form>
  );
}

function LimitField(props: {
  id: TextField;
  label: string;
  hint?: string;
  value: string;
  onInput: (v: string) => void;
}) {
  return (
    <div class="field">
      <label for={`limit-${props.id}`}>{props.label}</label>
      <input
        id={`limit-${props.id}`}
        inputMode={props.id === "name" ? "text" : "decimal"}
        value={props.value}
        placeholder={props.hint}
        onInput={(e) => props.onInput((e.target as HTMLInputElement).value)}
      />
    </div>
  );
}

/** The output formats a tenant may ask for; all of them is stored as null (whatever the node offers). */
function FormatChecks({
  formats,
  onChange,
}: {
  formats: LimitsDraft["formats"];
  onChange: (f: LimitsDraft["formats"]) => void;
}) {
  const toggle = (f: string) => {
    const current = formats ?? [...OUTPUT_FORMATS];
    const next = current.includes(f as never) ? current.filter((x) => x !== f) : [...current, f as never];
    onChange(next.length === OUTPUT_FORMATS.length ? null : next);
  };
  return (
    <fieldset>
      <legend>Output formats</legend>
      {OUTPUT_FORMATS.map((f) => (
        <label key={f} class="check">
          <input
            type="checkbox"
            checked={(formats ?? OUTPUT_FORMATS).includes(f as never)}
            onChange={() => toggle(f)}
          />
          {f}
        </label>
      ))}
    </fieldset>
  );
}
