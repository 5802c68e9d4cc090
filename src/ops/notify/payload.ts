import type { Alert } from "../alerts/model.js";

export type NotificationType = "alert.fired" | "alert.resolved" | "test";

/** Who sent it: the node that evaluated the alert, and its version. */
export interface FleetInfo {
  node: string;
  version: string;
}

/** The alert as a notification carries it: stable field names, for receivers' code. */
export interface AlertBody {
  id: string;
  rule: string;
  subject: string;
  severity: Alert["severity"];
  summary: string;
  runbook: string;
  figures: Alert["figures"];
  startedAt: string;
  resolvedAt: string | null;
}

/** imgfleet's own JSON (`kind: webhook`). */
export interface GenericPayload {
  type: NotificationType;
  alert: AlertBody;
  fleet: FleetInfo;
  sentAt: string;
}

/** A Slack incoming-webhook body (`kind: slack`); also understood by Mattermost and Rocket.Chat. */
export interface SlackPayload {
  text: string;
  blocks: unknown[];
}

export function alertBody(alert: Alert): AlertBody {
  return {
    id: alert.id,
    rule: alert.rule,
    subject: alert.subject,
    severity: alert.severity,
    summary: alert.summary,
    runbook: alert.runbook,
    figures: alert.figures,
    startedAt: alert.startedAt,
    resolvedAt: alert.resolvedAt,
  };
}

/** What `imgfleet alerts test` sends: shaped like a real alert, so a receiver's parsing is tested too. */
export function testAlert(requestedBy: string, now: number): Alert {
  const at = new Date(now).toISOString();
  return {
    id: "test",
    key: "test:fleet",
    rule: "test",
    subject: "fleet",
    severity: "warning",
    state: "firing",
    summary: `test notification from imgfleet, requested by ${requestedBy}: this channel works`,
    runbook: "Nothing to do: this was a test (`imgfleet alerts test`).",
    figures: {},
    startedAt: at,
    updatedAt: at,
    resolvedAt: null,
    ackedAt: null,
    ackedBy: null,
  };
}

export function genericPayload(
  type: NotificationType,
  alert: Alert,
  fleet: FleetInfo,
  now: number,
): GenericPayload {
  return { type, alert: alertBody(alert), fleet, sentAt: new Date(now).toISOString() };
}

const HEADLINE: Record<NotificationType, (a: Alert) => string> = {
  "alert.fired": (a) => `${a.severity === "critical" ? "🔴" : "🟠"} FIRING (${a.severity})`,
  "alert.resolved": () => "✅ RESOLVED",
  test: () => "🔔 TEST",
};

/** `text` carries everything (notifications and clients without blocks show only it); blocks lay it out. */
export function slackPayload(type: NotificationType, alert: Alert, fleet: FleetInfo): SlackPayload {
  const head = HEADLINE[type](alert);
  const summary = escapeMrkdwn(alert.summary);
  const runbook = escapeMrkdwn(alert.runbook);
  return {
    text: `${head}: ${summary}\nWhat to do: ${runbook}`,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: `*${head}* ${summary}` } },
      { type: "section", text: { type: "mrkdwn", text: `*What to do:* ${runbook}` } },
      {
        type: "context",
        elements: [
          {
            type: "mrkdwn",
            text: escapeMrkdwn(
              `rule ${alert.rule} · alert ${alert.id} · since ${alert.startedAt} · from ${fleet.node}`,
            ),
          },
        ],
      },
    ],
  };
}

/** Slack's three reserved characters; anything else in a summary (node names) is shown as is. */
function escapeMrkdwn(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
