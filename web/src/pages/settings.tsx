import type { NodeConfig, Versions } from "../../../src/contract/admin.js";
import { ADMIN, get, type SessionView } from "../api.js";
import { Loaded, PageHeader } from "../components/ui.js";
import { dateTime, duration } from "../format.js";
import { useResource } from "../hooks.js";

/** The answering node's effective config (secrets redacted), versions, this session, the support report. */
export function SettingsPage({ session }: { session: SessionView }) {
  const config = useResource("config", () => get<NodeConfig>("/config"));
  return (
    <section>
      <PageHeader title="Settings">
        <a class="button" href={`${ADMIN}/report`} download>
          Download support report
        </a>
      </PageHeader>
      <p class="muted">
        The support report is a Markdown file with secrets, keys and tenant names removed: read it before you
        send it. Making one is audited.
      </p>
      <Loaded resource={config} what="Loading the configuration">
        {(c) => (
          <>
            <VersionsCard versions={c.versions} />
            <NodeCard node={c.node} />
            <SessionCard session={session} />
            <section class="card" aria-labelledby="config-title">
              <h2 id="config-title">Effective configuration</h2>
              <p class="muted small">Secrets read [redacted]; URLs are cut to scheme and host.</p>
              <pre class="config" data-testid="config">
                {JSON.stringify(c.config, null, 2)}
              </pre>
            </section>
          </>
        )}
      </Loaded>
    </section>
  );
}

function VersionsCard({ versions: v }: { versions: Versions }) {
  return (
    <section class="card" aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <dl class="facts">
        <dt>imgfleet</dt>
        <dd data-testid="version">{v.imgfleet}</dd>
        <dt>Node.js</dt>
        <dd>{v.node}</dd>
        <dt>Operating system</dt>
        <dd>{v.os}</dd>
        <dt>sharp / libvips</dt>
        <dd>
          {v.sharp} / {v.libvips}
        </dd>
        <dt>nats-server</dt>
        <dd>{v.natsServer ?? "not used (embedded)"}</dd>
        <dt>Database</dt>
        <dd data-testid="database">{v.database.version}</dd>
      </dl>
    </section>
  );
}

function NodeCard({ node }: { node: NodeConfig["node"] }) {
  return (
    <section class="card" aria-labelledby="node-title">
      <h2 id="node-title">This node</h2>
      <dl class="facts">
        <dt>Node id</dt>
        <dd>{node.id}</dd>
        <dt>Roles</dt>
        <dd>{node.roles.join(", ")}</dd>
        <dt>Mode</dt>
        <dd>{node.fleet ? "fleet" : "embedded"}</dd>
        <dt>Started</dt>
        <dd>{dateTime(node.startedAt)}</dd>
      </dl>
    </section>
  );
}

function SessionCard({ session }: { session: SessionView }) {
  return (
    <section class="card" aria-labelledby="session-title">
      <h2 id="session-title">This session</h2>
      <dl class="facts">
        <dt>Admin key</dt>
        <dd>
          <code>{session.keyId}</code>
        </dd>
        <dt>Ends after idle</dt>
        <dd>{duration(session.idleTimeoutMs)}</dd>
        <dt>Ends at the latest</dt>
        <dd>{dateTime(session.expiresAt)}</dd>
      </dl>
    </section>
  );
}
