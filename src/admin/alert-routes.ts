import type { FastifyInstance } from "fastify";
import {
  type Alert,
  AlertQuery,
  type AlertRule,
  type ChannelView,
  type Delivery,
  DeliveryQuery,
  type DeliveryResult,
  EmptyBody,
  NewChannelBody,
} from "../contract/admin.js";
import type { Page } from "../contract/common.js";
import { ADMIN_PREFIX } from "../contract/paths.js";
import type { Alerting } from "../ops/alerts/alerting.js";
import { describeRules } from "../ops/alerts/rules.js";
import type { EventLog } from "../ops/events.js";
import { channelView } from "../ops/notify/channels.js";
import { actorOf, page } from "./admin-context.js";
import { parseInput } from "./validation.js";

type IdParams = { Params: { id: string } };

/**
 * Alerts, notification channels and the delivery log under /admin/v1. Any
 * node answers (it is all in the database); acknowledging and channel
 * changes go to the audit trail.
 */
export function alertRoutes(app: FastifyInstance, alerting: Alerting, events: EventLog): void {
  const { store, channels, deliveries, notifier } = alerting;

  app.get<{ Reply: Page<Alert> }>("/alerts", async (request) => {
    const q = parseInput(AlertQuery, request.query, "query");
    return page(await store.list(q), q.limit);
  });

  app.get<{ Reply: { items: AlertRule[] } }>("/alerts/rules", async () => ({ items: describeRules() }));

  app.get<IdParams & { Reply: Alert }>("/alerts/:id", async (request) => store.get(request.params.id));

  app.post<IdParams & { Reply: Alert }>("/alerts/:id/ack", async (request) => {
    parseInput(EmptyBody, request.body, "body");
    const actor = actorOf(request);
    const alert = await store.ack(request.params.id, actor);
    if (alert.ackedBy === actor.id) {
      await events.record("alert.acked", `${actor.id} acknowledged: ${alert.summary}`, {
        alert: alert.id,
        rule: alert.rule,
        subject: alert.subject,
      });
    }
    return alert;
  });

  app.get<{ Reply: Page<ChannelView> }>("/notification-channels", async () => ({
    items: (await channels.all()).map(channelView),
    next: null,
  }));

  app.post<{ Reply: ChannelView }>("/notification-channels", async (request, reply) => {
    const body = parseInput(NewChannelBody, request.body, "channel");
    const channel = await channels.create(actorOf(request), body);
    return reply
      .code(201)
      .header("location", `${ADMIN_PREFIX}/notification-channels/${channel.id}`)
      .send(channelView(channel));
  });

  app.delete<IdParams & { Reply: ChannelView }>("/notification-channels/:id", async (request) =>
    channelView(await channels.remove(actorOf(request), request.params.id)),
  );

  // A test is sent, not stored: it needs no audit entry, and its attempts are in the delivery log.
  app.post<{ Reply: { items: DeliveryResult[] } }>("/notification-channels/test", async (request) => {
    parseInput(EmptyBody, request.body, "body");
    return { items: await notifier.test(actorOf(request).id) };
  });

  app.post<IdParams & { Reply: { items: DeliveryResult[] } }>(
    "/notification-channels/:id/test",
    async (request) => {
      parseInput(EmptyBody, request.body, "body");
      return { items: await notifier.test(actorOf(request).id, request.params.id) };
    },
  );

  app.get<{ Reply: Page<Delivery> }>("/notification-deliveries", async (request) => {
    const q = parseInput(DeliveryQuery, request.query, "query");
    return page(await deliveries.list(q), q.limit);
  });
}
