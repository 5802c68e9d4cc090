import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiError } from "../api.js";

/** A problem+json answer, as the server wrote it: title, detail and the field errors. */
export function ProblemBox({ error, onDismiss }: { error: ApiError | null; onDismiss?: () => void }) {
  if (!error) return null;
  const p = error.problem;
  return (
    <div class="problem" role="alert">
      <strong>{p.title ?? "Request failed"}</strong>
      {p.status ? <span class="muted"> ({p.status})</span> : null}
      {p.detail ? <p>{p.detail}</p> : null}
      {p.errors && p.errors.length > 0 ? (
        <ul>
          {p.errors.map((e) => (
            <li key={e}>{e}</li>
          ))}
        </ul>
      ) : null}
      {p.type ? (
        <p class="muted small">
          <a href={p.type} target="_blank" rel="noreferrer">
            {p.type}
          </a>
        </p>
      ) : null}
      {onDismiss ? (
        <button type="button" class="link" onClick={onDismiss}>
          Dismiss
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <p class="loading" aria-busy="true">
      {what}…
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** Loading, then the problem, then the content: the three states every list has. */
export function Loaded<T>({
  resource,
  children,
  what,
}: {
  resource: { data: T | undefined; error: ApiError | null; loading: boolean };
  children: (data: T) => ComponentChildren;
  what?: string;
}) {
  if (resource.data === undefined) {
    return resource.error ? <ProblemBox error={resource.error} /> : <Loading what={what} />;
  }
  return (
    <>
      {resource.error ? <ProblemBox error={resource.error} /> : null}
      {children(resource.data)}
    </>
  );
}

export function Badge({
  tone,
  children,
}: {
  tone: "green" | "amber" | "red" | "grey" | "blue";
  children: ComponentChildren;
}) {
  return <span class={`badge ${tone}`}>{children}</span>;
}

/** Copies `text`; says so for two seconds. Falls back to selecting the text where the clipboard API is denied. */
export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied("yes");
    } catch {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      setCopied(ok ? "yes" : "no");
    }
    setTimeout(() => setCopied(null), 2000);
  };
  return (
    <button type="button" onClick={copy} aria-live="polite">
      {copied === "yes" ? "Copied" : copied === "no" ? "Select and copy by hand" : label}
    </button>
  );
}

export interface ConfirmRequest {
  title: string;
  body: ComponentChildren;
  action: string;
}

/**
 * Confirmation before destructive actions: a modal <dialog> (focus is moved
 * into it, Escape cancels), answering true only for the named action.
 */
export function useConfirm(): [ComponentChildren, (req: ConfirmRequest) => Promise<boolean>] {
  const [request, setRequest] = useState<(ConfirmRequest & { resolve: (ok: boolean) => void }) | null>(null);
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (request && dialog && !dialog.open) dialog.showModal();
  }, [request]);
  const close = (ok: boolean) => {
    ref.current?.close();
    request?.resolve(ok);
    setRequest(null);
  };
  const element = request ? (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onCancel={() => close(false)}>
      <h2 id="confirm-title">{request.title}</h2>
      <div>{request.body}</div>
      <div class="actions">
        <button type="button" onClick={() => close(false)}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={() => close(true)}>
          {request.action}
        </button>
      </div>
    </dialog>
  ) : null;
  const confirm = (req: ConfirmRequest) => new Promise<boolean>((resolve) => setRequest({ ...req, resolve }));
  return [element, confirm];
}

/** A one-time secret: shown once, with a copy button, until dismissed. */
export function SecretOnce({ secret, what, onDone }: { secret: string; what: string; onDone: () => void }) {
  return (
    <div class="secret" role="status">
      <p>
        <strong>{what}</strong> — copy it now: it is shown only this once (only its hash is stored).
      </p>
      <div class="secret-row">
        <code class="secret-value" data-testid="secret">
          {secret}
        </code>
        <CopyButton text={secret} />
      </div>
      <button type="button" class="link" onClick={onDone}>
        I have copied it
      </button>
    </div>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · imgfleet console`;
  }, [title]);
  return (
    <header class="page-header">
      <h1>{title}</h1>
      {children ? <div class="page-actions">{children}</div> : null}
    </header>
  );
}
