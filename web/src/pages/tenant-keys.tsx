import { useState } from "preact/hooks";
import type { ApiKey, IssuedKey, RotatedKey } from "../../../src/contract/admin.js";
import { TENANT_SCOPES } from "../../../src/contract/vocabulary.js";
import { get, post, query } from "../api.js";
import { type Column, DataTable } from "../components/data-table.js";
import { Badge, Empty, Loaded, ProblemBox, SecretOnce, useConfirm } from "../components/ui.js";
import { dateTime } from "../format.js";
import { useAction, useResource } from "../hooks.js";

interface KeyActions {
  revoke: (key: ApiKey) => void;
  rotate: (key: ApiKey) => void;
}

/** A tenant's API keys: create (the secret shown once), revoke, rotate. */
export function TenantKeys({ tenantId }: { tenantId: string }) {
  const [showRevoked, setShowRevoked] = useState(false);
  const keys = useResource(`keys-${tenantId}-${showRevoked}`, () =>
    get<{ items: ApiKey[] }>(
      `/tenants/${tenantId}/keys${query({ includeRevoked: showRevoked || undefined })}`,
    ),
  );
  const [secret, setSecret] = useState<{ secret: string; what: string } | null>(null);
  const actions = useKeyActions(tenantId, () => keys.reload(), setSecret);
  const columns = keyColumns({ revoke: actions.revoke.run, rotate: actions.rotate.run });
  return (
    <section class="card" aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <NewKeyForm
        tenantId={tenantId}
        onCreated={(k) => {
          setSecret({ secret: k.secret, what: `Key ${k.id}${k.name ? ` (${k.name})` : ""}` });
          void keys.reload();
        }}
      />
      {secret ? (
        <SecretOnce secret={secret.secret} what={secret.what} onDone={() => setSecret(null)} />
      ) : null}
      <label class="check">
        <input type="checkbox" checked={showRevoked} onChange={() => setShowRevoked(!showRevoked)} />
        Show revoked keys
      </label>
      <ProblemBox error={actions.revoke.error ?? actions.rotate.error} />
      <Loaded resource={keys} what="Loading keys">
        {({ items }) =>
          items.length === 0 ? (
            <Empty>No keys yet: create one to let this tenant resize.</Empty>
          ) : (
            <DataTable
              rows={items}
              columns={columns}
              rowKey={(k) => k.id}
              rowProps={(k) => ({ "data-key": k.id })}
            />
          )
        }
      </Loaded>
      {actions.dialog}
    </section>
  );
}

/** Revoke and rotate, each after a confirmation that says what happens to requests with the key. */
function useKeyActions(
  tenantId: string,
  reload: () => Promise<void>,
  showSecret: (s: { secret: string; what: string }) => void,
) {
  const [dialog, confirm] = useConfirm();
  const revoke = useAction(async (key: ApiKey) => {
    const ok = await confirm({
      title: `Revoke key ${key.name || key.id}?`,
      body: (
        <p>
          Requests with this key are refused (401) on every node within about a second. This cannot be undone.
        </p>
      ),
      action: "Revoke key",
    });
    if (!ok) return;
    await post(`/tenants/${tenantId}/keys/${key.id}/revoke`);
    await reload();
  });
  const rotate = useAction(async (key: ApiKey) => {
    const ok = await confirm({
      title: `Rotate key ${key.name || key.id}?`,
      body: (
        <p>
          A new key is issued now. The old one keeps working for the grace period (24 hours by default), then
          stops: give the new key to the customer before then.
        </p>
      ),
      action: "Rotate key",
    });
    if (!ok) return;
    const rotated = await post<RotatedKey>(`/tenants/${tenantId}/keys/${key.id}/rotate`);
    showSecret({ secret: rotated.secret, what: `New key ${rotated.id} (replaces ${key.id})` });
    await reload();
  });
  return { revoke, rotate, dialog };
}

const isLive = (k: ApiKey) => k.revokedAt === null || Date.parse(k.revokedAt) > Date.now();

function keyColumns(actions: KeyActions): Column<ApiKey>[] {
  return [
    {
      header: "Key",
      cell: (k) => (
        <>
          <code>{k.id}</code>
          {k.name ? <div class="small">{k.name}</div> : null}
        </>
      ),
    },
    { header: "Scopes", cell: (k) => k.scopes.join(", ") },
    {
      header: "Created",
      cell: (k) => (
        <>
          {dateTime(k.createdAt)}
          <div class="muted small">by {k.createdBy}</div>
        </>
      ),
    },
    { header: "Expires", cell: (k) => (k.expiresAt ? dateTime(k.expiresAt) : "never") },
    { header: "State", cell: (k) => <KeyState k={k} /> },
    {
      header: <span class="sr-only">Actions</span>,
      class: "actions-cell",
      cell: (k) =>
        isLive(k) && !k.replacedBy ? (
          <>
            <button type="button" onClick={() => actions.rotate(k)}>
              Rotate
            </button>
            <button type="button" class="danger" onClick={() => actions.revoke(k)}>
              Revoke
            </button>
          </>
        ) : null,
    },
  ];
}

function KeyState({ k }: { k: ApiKey }) {
  if (k.revokedAt && !isLive(k)) return <Badge tone="grey">revoked {dateTime(k.revokedAt)}</Badge>;
  if (k.replacedBy) return <Badge tone="amber">rotated; ends {dateTime(k.revokedAt)}</Badge>;
  return <Badge tone="green">active</Badge>;
}

function NewKeyForm({ tenantId, onCreated }: { tenantId: string; onCreated: (k: IssuedKey) => void }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["resize"]);
  const [expiresInDays, setExpiresInDays] = useState("");
  const create = useAction(async () => {
    const days = Number(expiresInDays);
    const expiresAt =
      expiresInDays.trim() && days > 0 ? new Date(Date.now() + days * 86_400_000).toISOString() : null;
    const key = await post<IssuedKey>(`/tenants/${tenantId}/keys`, { name, scopes, expiresAt });
    setName("");
    onCreated(key);
  });
  return (
    <form
      class="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        void create.run();
      }}
    >
      <div class="field">
        <label for="key-name">Key name</label>
        <input
          id="key-name"
          value={name}
          placeholder="production"
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
        />
      </div>
      <fieldset>
        <legend>Scopes</legend>
        {TENANT_SCOPES.map((s) => (
          <label key={s} class="check">
            <input
              type="checkbox"
              checked={scopes.includes(s)}
              onChange={() => setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s])}
            />
            {s}
          </label>
        ))}
      </fieldset>
      <div class="field">
        <label for="key-expiry">Expires in (days)</label>
        <input
          id="key-expiry"
          inputMode="numeric"
          value={expiresInDays}
          placeholder="never"
          onInput={(e) => setExpiresInDays((e.target as HTMLInputElement).value)}
        />
      </div>
      <button type="submit" class="primary" disabled={create.busy}>
        Create key
      </button>
      <ProblemBox error={create.error} />
    </form>
  );
}
