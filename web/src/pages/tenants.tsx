import { useEffect, useState } from "preact/hooks";
import type { Tenant } from "../../../src/contract/admin.js";
import type { Page } from "../../../src/contract/common.js";
import { get, post, query } from "../api.js";
import { type Column, DataTable } from "../components/data-table.js";
import { Badge, Empty, Loaded, PageHeader, ProblemBox } from "../components/ui.js";
import { dateTime } from "../format.js";
import { useAction, useResource } from "../hooks.js";
import { href, navigate, type Route, setParams } from "../router.js";

export const STATUS_TONE = { active: "green", suspended: "amber", deleted: "grey" } as const;

/** Tenants: search (kept in the URL), a paged list, and a form to create one. */
export function TenantsPage({ route }: { route: Route }) {
  const search = route.params.get("search") ?? "";
  const status = route.params.get("status") ?? "";
  const [typed, setTyped] = useState(search);
  const [extra, setExtra] = useState<Tenant[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const list = useResource(`tenants-${search}-${status}`, async () => {
    const page = await get<Page<Tenant>>(
      `/tenants${query({ search, status, includeDeleted: status === "deleted" ? true : undefined, limit: 50 })}`,
    );
    setExtra([]);
    setNext(page.next);
    return page.items;
  });
  // Search as the user types, a moment after the last key (and keep it in the URL for bookmarks).
  useEffect(() => {
    if (typed === search) return;
    const t = setTimeout(() => setParams({ search: typed }), 250);
    return () => clearTimeout(t);
  }, [typed, search]);

  const more = useAction(async () => {
    const page = await get<Page<Tenant>>(`/tenants${query({ search, status, after: next, limit: 50 })}`);
    setExtra((e) => [...e, ...page.items]);
    setNext(page.next);
  });

  return (
    <section>
      <PageHeader title="Tenants" />
      <NewTenantForm />
      <TenantSearch typed={typed} status={status} onType={setTyped} />
      <Loaded resource={list} what="Loading tenants">
        {(items) =>
          items.length === 0 ? (
            <Empty>
              {search ? `No tenant matches “${search}”.` : "No tenants yet: create the first one above."}
            </Empty>
          ) : (
            <DataTable rows={[...items, ...extra]} columns={TENANT_COLUMNS} rowKey={(t) => t.id} />
          )
        }
      </Loaded>
      {next ? (
        <button type="button" onClick={() => more.run()} disabled={more.busy}>
          Load more
        </button>
      ) : null}
      <ProblemBox error={more.error} />
    </section>
  );
}

function TenantSearch({
  typed,
  status,
  onType,
}: {
  typed: string;
  status: string;
  onType: (s: string) => void;
}) {
  return (
    <search class="toolbar">
      <label for="tenant-search">Search</label>
      <input
        id="tenant-search"
        type="search"
        placeholder="name or id"
        value={typed}
        onInput={(e) => onType((e.target as HTMLInputElement).value)}
      />
      <label for="tenant-status">Status</label>
      <select
        id="tenant-status"
        value={status}
        onChange={(e) => setParams({ status: (e.target as HTMLSelectElement).value })}
      >
        <option value="">active and suspended</option>
        <option value="active">active</option>
        <option value="suspended">suspended</option>
        <option value="deleted">deleted</option>
      </select>
    </search>
  );
}

const TENANT_COLUMNS: Column<Tenant>[] = [
  { header: "Name", cell: (t) => <a href={href(`/tenants/${t.id}`)}>{t.name}</a> },
  { header: "Id", cell: (t) => <code>{t.id}</code> },
  { header: "Status", cell: (t) => <Badge tone={STATUS_TONE[t.status]}>{t.status}</Badge> },
  { header: "Rate/s", cell: (t) => t.ratePerSecond, num: true },
  { header: "Burst", cell: (t) => t.burst, num: true },
  { header: "In flight", cell: (t) => t.maxInFlight, num: true },
  { header: "Created", cell: (t) => dateTime(t.createdAt) },
];

function NewTenantForm() {
  const [name, setName] = useState("");
  const create = useAction(async () => {
    const tenant = await post<Tenant>("/tenants", { name });
    navigate(`/tenants/${tenant.id}`);
  });
  return (
    <form
      class="card inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        void create.run();
      }}
    >
      <h2>New tenant</h2>
      <label for="new-tenant-name">Name</label>
      <input
        id="new-tenant-name"
        value={name}
        required
        maxLength={100}
        placeholder="Acme Inc."
        onInput={(e) => setName((e.target as HTMLInputElement).value)}
      />
      <button type="submit" class="primary" disabled={create.busy}>
        Create tenant
      </button>
      <p class="muted small">It gets the default limits; change them on its page.</p>
      <ProblemBox error={create.error} />
    </form>
  );
}
