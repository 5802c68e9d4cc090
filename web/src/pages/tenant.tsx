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

/** One tenant: status and limits, its keys, its usage and cost. */
export function TenantPage({ id, route }: { id: string; route: Route }) {
  const tenant = useResource(`tenant-${id}`, () => get<Tenant>(`/tenants/${encodeURIComponent(id)}`));
  const [dialog, confirm] = useConfirm();
  const act = useAction(async (change: "suspend" | "resume" | "delete") => {
    const t = tenant.data;
    if (!t) return;
    if (change === "suspend") {
      const ok = await confirm({
        title: `Suspend ${t.name}?`,
        body: (
          <p>
            Every request with its keys is refused (403) until it is resumed. Its keys and usage are kept.
          </p>
        ),
        action: "Suspend",
      });
      if (!ok) return;
    }
    if (change === "delete") {
      const ok = await confirm({
        title: `Delete ${t.name}?`,
        body: (
          <p>The tenant is soft-deleted and all its keys are revoked at once. Its usage stays for billing.</p>
        ),
        action: "Delete tenant",
      });
      if (!ok) return;
      await del(`/tenants/${t.id}`);
    } else {
      await post(`/tenants/${t.id}/${change}`);
    }
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
              <Badge tone={STATUS_TONE[t.status]}>{t.status}</Badge>
              {t.status === "active" ? (
                <button type="button" onClick={() => act.run("suspend")} disabled={act.busy}>
                  Suspend
                </button>
              ) : null}
              {t.status === "suspended" ? (
                <button type="button" onClick={() => act.run("resume")} disabled={act.busy}>
                  Resume
                </button>
              ) : null}
              {t.status !== "deleted" ? (
                <button type="button" class="danger" onClick={() => act.run("delete")} disabled={act.busy}>
                  Delete
                </button>
              ) : null}
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

function LimitsForm({ tenant, onSaved }: { tenant: Tenant; onSaved: () => void }) {
  const initial = () => ({
    name: tenant.name,
    ratePerSecond: String(tenant.ratePerSecond),
    burst: String(tenant.burst),
    maxInFlight: String(tenant.maxInFlight),
    maxInputBytes: tenant.maxInputBytes === null ? "" : String(tenant.maxInputBytes),
    formats: tenant.outputFormats,
  });
  const [form, setForm] = useState(initial);
  const [saved, setSaved] = useState(false);
  useEffect(() => setForm(initial()), [tenant]);
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
  const field = (
    key: "name" | "ratePerSecond" | "burst" | "maxInFlight" | "maxInputBytes",
    label: string,
    hint?: string,
  ) => (
    <div class="field">
      <label for={`limit-${key}`}>{label}</label>
      <input
        id={`limit-${key}`}
        inputMode={key === "name" ? "text" : "decimal"}
        value={form[key]}
        placeholder={hint}
        onInput={(e) => {
          setSaved(false);
          setForm({ ...form, [key]: (e.target as HTMLInputElement).value });
        }}
      />
    </div>
  );
  const toggleFormat = (f: string) => {
    setSaved(false);
    const current = form.formats ?? [...OUTPUT_FORMATS];
    const next = current.includes(f as never) ? current.filter((x) => x !== f) : [...current, f as never];
    setForm({ ...form, formats: next.length === OUTPUT_FORMATS.length ? null : next });
  };
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
      <fieldset>
        <legend>Output formats</legend>
        {OUTPUT_FORMATS.map((f) => (
          <label key={f} class="check">
            <input
              type="checkbox"
              checked={(form.formats ?? OUTPUT_FORMATS).includes(f as never)}
              onChange={() => toggleFormat(f)}
            />
            {f}
          </label>
        ))}
      </fieldset>
      <button type="submit" class="primary" disabled={save.busy}>
        Save limits
      </button>
      {saved ? <span class="ok"> Saved.</span> : null}
      <ProblemBox error={save.error} />
    </form>
  );
}
