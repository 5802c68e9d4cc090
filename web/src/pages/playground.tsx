import { useEffect, useState } from "preact/hooks";
import type { IssuedKey, Tenant } from "../../../src/contract/admin.js";
import type { Page } from "../../../src/contract/common.js";
import { PUBLIC_PREFIX } from "../../../src/contract/paths.js";
import { ApiError, get, post, readProblem } from "../api.js";
import { PageHeader, ProblemBox, SecretOnce } from "../components/ui.js";
import { bytes } from "../format.js";
import { asApiError, useAction, useResource } from "../hooks.js";
import type { Route } from "../router.js";

interface Picture {
  url: string;
  size: number;
  type: string;
  width: number | null;
  height: number | null;
}

interface Result extends Picture {
  timing: { name: string; ms: number | null; desc: string | null }[];
  requestId: string | null;
}

const FITS = ["cover", "contain", "fill", "inside", "outside"];
const FORMATS = ["", "auto", "jpeg", "png", "webp", "avif", "gif"];

/** `probe;dur=1.2, queue;dur=0.4;desc="waiting"` → its entries. */
export function parseServerTiming(header: string | null): Result["timing"] {
  if (!header) return [];
  return header.split(",").map((entry) => {
    const [name = "", ...params] = entry.split(";").map((s) => s.trim());
    const dur = params.find((p) => p.startsWith("dur="));
    const desc = params.find((p) => p.startsWith("desc="));
    return {
      name,
      ms: dur ? Number(dur.slice(4)) : null,
      desc: desc ? desc.slice(5).replace(/^"|"$/g, "") : null,
    };
  });
}

type Options = { w: string; h: string; fit: string; format: string; q: string };

/** Frees a picture's object URL when it is replaced or the page goes. */
function useRevokeOnChange(picture: Picture | null): void {
  useEffect(
    () => () => {
      if (picture) URL.revokeObjectURL(picture.url);
    },
    [picture],
  );
}

/** One resize through the public API, as a customer's code would send it; a problem answer throws ApiError. */
async function requestResize(file: File, apiKey: string, options: Options): Promise<Result> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(options)) if (v.trim()) params.set(k, v.trim());
  const response = await fetch(`${PUBLIC_PREFIX}/resize?${params}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${apiKey.trim()}`,
      "content-type": file.type.startsWith("image/") ? file.type : "application/octet-stream",
    },
    body: file,
  });
  if (!response.ok) throw new ApiError(response.status, await readProblem(response));
  const blob = await response.blob();
  return {
    url: URL.createObjectURL(blob),
    size: blob.size,
    type: response.headers.get("content-type") ?? blob.type,
    width: Number(response.headers.get("x-image-width")) || null,
    height: Number(response.headers.get("x-image-height")) || null,
    timing: parseServerTiming(response.headers.get("server-timing")),
    requestId: response.headers.get("x-request-id"),
  };
}

/**
 * Resize an uploaded picture through the public `POST /v1/resize`, with a
 * tenant's API key the user pastes, or one the user explicitly creates
 * here for a tenant; then the original and the result side by side.
 */
export function PlaygroundPage({ route }: { route: Route }) {
  const [apiKey, setApiKey] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [original, setOriginal] = useState<Picture | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [options, setOptions] = useState<Options>(() => ({
    w: route.params.get("w") ?? "400",
    h: route.params.get("h") ?? "",
    fit: route.params.get("fit") ?? "cover",
    format: route.params.get("format") ?? "webp",
    q: route.params.get("q") ?? "",
  }));
  useRevokeOnChange(original);
  useRevokeOnChange(result);

  const pick = async (f: File | null) => {
    setFile(f);
    setResult(null);
    setError(null);
    if (!f) return setOriginal(null);
    const url = URL.createObjectURL(f);
    setOriginal({ url, size: f.size, type: f.type || "unknown", ...(await dimensions(url)) });
  };
  const resize = async (event: Event) => {
    event.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      setResult(await requestResize(file, apiKey, options));
    } catch (e) {
      setResult(null);
      setError(asApiError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <PageHeader title="Playground" />
      <KeyPanel apiKey={apiKey} setApiKey={setApiKey} />
      <form class="card" onSubmit={resize} aria-labelledby="pg-title">
        <h2 id="pg-title">Picture and options</h2>
        <OptionFields options={options} setOptions={setOptions} onFile={pick} />
        <button type="submit" class="primary" disabled={busy || !file || !apiKey.trim()}>
          {busy ? "Resizing…" : "Resize"}
        </button>
        {!apiKey.trim() ? <span class="muted small"> Paste or create a tenant API key first.</span> : null}
      </form>
      <ProblemBox error={error} />
      <div class="grid compare">
        <PictureCard title="Original" picture={original} />
        <PictureCard title="Result" picture={result} timing={result?.timing} original={original} />
      </div>
    </section>
  );
}

function OptionFields({
  options,
  setOptions,
  onFile,
}: {
  options: Options;
  setOptions: (o: Options) => void;
  onFile: (f: File | null) => void;
}) {
  const set = (k: keyof Options) => (e: Event) =>
    setOptions({ ...options, [k]: (e.target as HTMLInputElement | HTMLSelectElement).value });
  return (
    <div class="fields">
      <div class="field wide">
        <label for="pg-file">Picture</label>
        <input
          id="pg-file"
          type="file"
          accept="image/*"
          onChange={(e) => onFile((e.target as HTMLInputElement).files?.[0] ?? null)}
        />
      </div>
      <div class="field">
        <label for="pg-w">Width</label>
        <input id="pg-w" inputMode="numeric" value={options.w} onInput={set("w")} />
      </div>
      <div class="field">
        <label for="pg-h">Height</label>
        <input id="pg-h" inputMode="numeric" value={options.h} placeholder="keep aspect" onInput={set("h")} />
      </div>
      <div class="field">
        <label for="pg-fit">Fit</label>
        <select id="pg-fit" value={options.fit} onChange={set("fit")}>
          {FITS.map((f) => (
            <option key={f} value={f}>
              {f}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="pg-format">Format</label>
        <select id="pg-format" value={options.format} onChange={set("format")}>
          {FORMATS.map((f) => (
            <option key={f} value={f}>
              {f || "same as input"}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="pg-q">Quality</label>
        <input id="pg-q" inputMode="numeric" value={options.q} placeholder="default" onInput={set("q")} />
      </div>
    </div>
  );
}

function KeyPanel({ apiKey, setApiKey }: { apiKey: string; setApiKey: (k: string) => void }) {
  const tenants = useResource("pg-tenants", () => get<Page<Tenant>>("/tenants?status=active&limit=200"));
  const [tenant, setTenant] = useState("");
  const [issued, setIssued] = useState<IssuedKey | null>(null);
  const create = useAction(async () => {
    const key = await post<IssuedKey>(`/tenants/${tenant}/keys`, { name: "playground", scopes: ["resize"] });
    setIssued(key);
    setApiKey(key.secret);
  });
  return (
    <form class="card" aria-labelledby="pg-key-title" onSubmit={(e) => e.preventDefault()}>
      <h2 id="pg-key-title">Tenant API key</h2>
      <p class="muted small">
        The playground calls the public <code>POST /v1/resize</code> like a customer would, so it needs a
        tenant's API key (with the <code>resize</code> scope). The key stays in this page only.
      </p>
      <div class="fields">
        <div class="field wide">
          <label for="pg-key">API key</label>
          <input
            id="pg-key"
            type="password"
            autoComplete="off"
            spellcheck={false}
            placeholder="imf_…"
            value={apiKey}
            onInput={(e) => setApiKey((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="pg-tenant">or create a playground key for</label>
          <select
            id="pg-tenant"
            value={tenant}
            onChange={(e) => setTenant((e.target as HTMLSelectElement).value)}
          >
            <option value="">choose a tenant</option>
            {(tenants.data?.items ?? []).map((t) => (
              <option key={t.id} value={t.id}>
                {t.name} ({t.id})
              </option>
            ))}
          </select>
        </div>
        <button type="button" disabled={!tenant || create.busy} onClick={() => create.run()}>
          Create playground key
        </button>
      </div>
      {issued ? (
        <SecretOnce
          secret={issued.secret}
          what={`Playground key ${issued.id} for ${issued.tenantId} (revoke it on the tenant's page when done)`}
          onDone={() => setIssued(null)}
        />
      ) : null}
      <ProblemBox error={create.error ?? tenants.error} />
    </form>
  );
}

function PictureCard({
  title,
  picture,
  timing,
  original,
}: {
  title: string;
  picture: Picture | null;
  timing?: Result["timing"];
  original?: Picture | null;
}) {
  return (
    <figure class="card picture" data-testid={`picture-${title.toLowerCase()}`}>
      <figcaption>
        <strong>{title}</strong>
        {picture ? (
          <span class="muted">
            {" "}
            {picture.width && picture.height ? `${picture.width} × ${picture.height}, ` : ""}
            <span data-testid={`${title.toLowerCase()}-type`}>{picture.type}</span>, {bytes(picture.size)}
            {original && original.size > 0
              ? ` (${Math.round((picture.size / original.size) * 100)}% of the original)`
              : ""}
          </span>
        ) : null}
      </figcaption>
      {picture ? (
        <img src={picture.url} alt={title === "Original" ? "the uploaded original" : "the resized result"} />
      ) : (
        <p class="empty">{title === "Original" ? "Choose a picture." : "Resize to see the result."}</p>
      )}
      {timing && timing.length > 0 ? (
        <table class="timing" data-testid="server-timing">
          <caption>Server-Timing</caption>
          <tbody>
            {timing.map((t) => (
              <tr key={t.name}>
                <th scope="row">{t.name}</th>
                <td class="num">{t.ms === null ? "—" : `${t.ms.toFixed(1)} ms`}</td>
                <td class="muted small">{t.desc ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </figure>
  );
}

function dimensions(url: string): Promise<{ width: number | null; height: number | null }> {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => resolve({ width: null, height: null });
    img.src = url;
  });
}
