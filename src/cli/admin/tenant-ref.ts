import { editDistance, isCloseTo } from "../../util/edit-distance.js";
import { cliCommand, shellWord } from "../invocation.js";
import { type AdminClient, AdminClientError, EXIT, type Tenant } from "./client.js";

/**
 * Wherever the CLI takes a tenant, a person may type its name (`acme`) or
 * its id (`ten_…`). Names are unique among live tenants (case-insensitive),
 * so a name resolves through the admin API's tenant search to exactly one
 * id; a deleted tenant's name still resolves when no live tenant has it.
 */

/** The shape of a tenant id (src/identity/ids.ts), kept here so the CLI loads nothing of the server. */
const TENANT_ID = /^ten_[0-9a-hjkmnp-tv-z]{26}$/;

/** How many tenants are read to suggest names close to a mistyped one. */
const SUGGESTION_SCAN = 1000;
const MAX_SUGGESTIONS = 5;

/** The tenant id a name or id stands for. Ids are passed through: the node says when one does not exist. */
export async function tenantId(client: AdminClient, ref: string): Promise<string> {
  const text = ref.trim();
  if (TENANT_ID.test(text)) return text;
  const named = await namedTenants(client, text);
  const live = named.filter((t) => t.status !== "deleted");
  const [only] = live.length > 0 ? live : named;
  if (only && (live.length === 1 || named.length === 1)) return only.id;
  if (named.length > 1) {
    throw new AdminClientError(
      `${named.length} deleted tenants were named '${text}': ${named.map(describe).join(", ")}; give the id`,
      EXIT.usage,
    );
  }
  throw await notFound(client, text);
}

/** Undefined stays undefined: for optional `--tenant` flags. */
export async function optionalTenantId(
  client: AdminClient,
  ref: string | undefined,
): Promise<string | undefined> {
  return ref === undefined ? undefined : tenantId(client, ref);
}

/** Tenants whose name is exactly `name`, ignoring case (the search itself matches any part of a name). */
async function namedTenants(client: AdminClient, name: string): Promise<Tenant[]> {
  const matches = await client.listAllTenants({ search: name, includeDeleted: true, limit: 100 });
  return matches.filter((t) => t.name.toLowerCase() === name.toLowerCase());
}

function describe(t: Tenant): string {
  return `${t.name} (${t.id}${t.status === "deleted" ? ", deleted" : ""})`;
}

/** No such tenant: the names that contain the text or are a few letters away, with their ids. */
async function notFound(client: AdminClient, text: string): Promise<AdminClientError> {
  const containing = await client.listTenants({ search: text, limit: MAX_SUGGESTIONS });
  const close = containing.items.length > 0 ? [] : await closeNames(client, text);
  const suggestions = [...containing.items, ...close].slice(0, MAX_SUGGESTIONS);
  const hint =
    suggestions.length > 0
      ? `did you mean ${suggestions.map(describe).join(", or ")}?`
      : `\`${cliCommand("tenants list")}\` shows every tenant`;
  return new AdminClientError(
    `no tenant named ${shellWord(text)} (a tenant is given by its name or its ten_… id); ${hint}`,
    EXIT.failed,
  );
}

async function closeNames(client: AdminClient, text: string): Promise<Tenant[]> {
  const scanned: Tenant[] = [];
  let after: string | undefined;
  do {
    const page = await client.listTenants({ limit: 100, after });
    scanned.push(...page.items);
    after = page.next ?? undefined;
  } while (after !== undefined && scanned.length < SUGGESTION_SCAN);
  const wanted = text.toLowerCase();
  return scanned
    .filter((t) => isCloseTo(wanted, t.name.toLowerCase()))
    .sort((a, b) => editDistance(wanted, a.name.toLowerCase()) - editDistance(wanted, b.name.toLowerCase()));
}

/** Beyond this many ids, one listing of every tenant is cheaper than a request per id. */
const LOOKUPS_PER_ID = 20;

/** Tenant names by id, for tables that list ids; ids it cannot find are left out. */
export async function tenantNames(client: AdminClient, ids: Iterable<string>): Promise<Map<string, string>> {
  const wanted = [...new Set(ids)].filter((id) => TENANT_ID.test(id));
  if (wanted.length > LOOKUPS_PER_ID) {
    const all = await client.listAllTenants({ includeDeleted: true, limit: 100 });
    return new Map(all.filter((t) => wanted.includes(t.id)).map((t) => [t.id, t.name]));
  }
  const found = await Promise.all(
    wanted.map((id) =>
      client.getTenant(id).then(
        (t) => [id, t.name] as const,
        // A name is a convenience beside the id: the table is printed without it.
        () => undefined,
      ),
    ),
  );
  return new Map(found.filter((entry) => entry !== undefined));
}
