import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { jitteredBackoffMs } from "../../util/backoff.js";
import { delay } from "../../util/time.js";
import type { Alert } from "../alerts/model.js";
import type { EventLog } from "../events.js";
import type { Channel, ChannelStore } from "./channels.js";
import type { DeliveryLog } from "./deliveries.js";
import { type FleetInfo, genericPayload, type NotificationType, slackPayload, testAlert } from "./payload.js";
import { SIGNATURE_HEADER, signatureHeader } from "./signing.js";

/** A receiver that has not answered within this long has failed this attempt (a webhook should answer at once and work later). */
export const DELIVERY_TIMEOUT_MS = 5000;
/** Backoff between attempts: 2 s, 4 s, 8 s … (±25%), at most 5 min; ops.notifyAttempts bounds the count. */
export const BACKOFF_BASE_MS = 2000;
export const BACKOFF_MAX_MS = 300_000;
/** On stop, retries still waiting are given up after this long (the node is going away; the alert stays in the table). */
const STOP_GRACE_MS = 2000;

export interface NotifierDeps {
  channels: ChannelStore;
  log: DeliveryLog;
  events: Pick<EventLog, "record">;
  /** ops.notifyAttempts. */
  attempts: number;
  fleet: FleetInfo;
  logger: Logger;
  timeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

/** How one notification to one channel ended. */
export interface DeliveryResult {
  channel: string;
  name: string;
  status: "delivered" | "failed";
  attempts: number;
  responseStatus: number | null;
  error: string | null;
}

interface AttemptOutcome {
  ok: boolean;
  /** Worth another attempt: network error, timeout, 408, 429 or 5xx. Other 4xx are a configuration error. */
  retry: boolean;
  status: number | null;
  error: string | null;
}

/**
 * Delivers alert notifications to every channel: a timeout per attempt,
 * retries with exponential backoff and jitter, every attempt in the
 * delivery log, and a `notification.failed` event when a channel could not
 * be reached at all. Only the alert engine and `alerts test` call it:
 * events never notify.
 *
 * Retries live in memory: if the node stops mid-backoff, that delivery is
 * given up (the delivery log shows `retrying` as its last word), and the
 * alert itself stays visible in `imgfleet alerts list`.
 */
export class Notifier {
  readonly #pending = new Set<Promise<unknown>>();
  /** Channel + alert → its latest delivery: a resolution waits for the firing's retries, so receivers see them in order. */
  readonly #chains = new Map<string, Promise<unknown>>();
  readonly #stop = new AbortController();

  constructor(private readonly deps: NotifierDeps) {}

  /** Fire and forget: each channel in the background, with every attempt ops.notifyAttempts allows. */
  notify(type: Exclude<NotificationType, "test">, alert: Alert): void {
    if (this.#stop.signal.aborted) return;
    const work = this.deps.channels
      .all()
      .then((channels) => Promise.all(channels.map((c) => this.#inOrder(c, type, alert))))
      .catch((error: unknown) =>
        this.deps.logger.warn(
          { err: error, alert: alert.id },
          "could not list notification channels; this notification is lost",
        ),
      );
    this.#track(work);
  }

  #inOrder(channel: Channel, type: NotificationType, alert: Alert): Promise<unknown> {
    const key = `${channel.id}\u0000${alert.id}`;
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.deliver(channel, type, alert, this.deps.attempts));
    this.#chains.set(key, next);
    void next.finally(() => {
      if (this.#chains.get(key) === next) this.#chains.delete(key);
    });
    return next;
  }

  /** A test notification to one channel (by id or name) or all, one attempt each, answered with how each went. */
  async test(requestedBy: string, channel?: string): Promise<DeliveryResult[]> {
    const channels = channel ? [await this.deps.channels.find(channel)] : await this.deps.channels.all();
    const alert = testAlert(requestedBy, Date.now());
    return Promise.all(channels.map((c) => this.deliver(c, "test", alert, 1)));
  }

  async deliver(
    channel: Channel,
    type: NotificationType,
    alert: Alert,
    attempts: number,
  ): Promise<DeliveryResult> {
    const body = JSON.stringify(
      channel.kind === "slack"
        ? slackPayload(type, alert, this.deps.fleet)
        : genericPayload(type, alert, this.deps.fleet, Date.now()),
    );
    // One id for every attempt, so a receiver that got an attempt whose answer was lost can drop the repeat.
    const deliveryId = randomUUID();
    let outcome: AttemptOutcome = { ok: false, retry: false, status: null, error: "not attempted" };
    let attempt = 0;
    while (attempt < attempts) {
      attempt++;
      outcome = await this.#attempt(channel, type, body, deliveryId);
      const last = outcome.ok || !outcome.retry || attempt === attempts || this.#stop.signal.aborted;
      await this.#log(channel, type, alert, attempt, outcome, last);
      if (last) break;
      const wait = jitteredBackoffMs(
        attempt,
        this.deps.backoffBaseMs ?? BACKOFF_BASE_MS,
        this.deps.backoffMaxMs ?? BACKOFF_MAX_MS,
      );
      if (
        !(await delay(wait, this.#stop.signal).then(
          () => true,
          () => false,
        ))
      )
        break;
    }
    const result: DeliveryResult = {
      channel: channel.id,
      name: channel.name,
      status: outcome.ok ? "delivered" : "failed",
      attempts: attempt,
      responseStatus: outcome.status,
      error: outcome.error,
    };
    if (!outcome.ok) await this.#failed(channel, type, alert, result);
    return result;
  }

  /** Resolves once every delivery in flight has ended (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Cancels waiting retries and waits briefly for attempts in flight. */
  async stop(): Promise<void> {
    this.#stop.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(timer);
  }

  async #attempt(
    channel: Channel,
    type: NotificationType,
    body: string,
    deliveryId: string,
  ): Promise<AttemptOutcome> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": `imgfleet/${this.deps.fleet.version}`,
      "x-imgfleet-event": type,
      "x-imgfleet-delivery": deliveryId,
    };
    if (channel.secret)
      headers[SIGNATURE_HEADER] = signatureHeader(channel.secret, body, Math.floor(Date.now() / 1000));
    try {
      const response = await fetch(channel.url, {
        method: "POST",
        headers,
        body,
        redirect: "error",
        signal: AbortSignal.timeout(this.deps.timeoutMs ?? DELIVERY_TIMEOUT_MS),
      });
      await response.body?.cancel().catch(() => {});
      if (response.ok) return { ok: true, retry: false, status: response.status, error: null };
      const retry = response.status >= 500 || response.status === 408 || response.status === 429;
      return {
        ok: false,
        retry,
        status: response.status,
        error: `HTTP ${response.status} ${response.statusText}`.trim(),
      };
    } catch (error) {
      return {
        ok: false,
        retry: true,
        status: null,
        error: describe(error, this.deps.timeoutMs ?? DELIVERY_TIMEOUT_MS),
      };
    }
  }

  async #log(
    channel: Channel,
    type: NotificationType,
    alert: Alert,
    attempt: number,
    o: AttemptOutcome,
    last: boolean,
  ) {
    await this.deps.log
      .record({
        channel: channel.id,
        alertId: type === "test" ? null : alert.id,
        event: type,
        status: o.ok ? "delivered" : last ? "failed" : "retrying",
        attempt,
        responseStatus: o.status,
        error: o.error,
      })
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: error }, "could not write the notification delivery log"),
      );
  }

  async #failed(
    channel: Channel,
    type: NotificationType,
    alert: Alert,
    result: DeliveryResult,
  ): Promise<void> {
    const what = type === "test" ? "a test notification" : `${type} of ${alert.rule} (${alert.subject})`;
    const message = `could not deliver ${what} to channel ${channel.name} after ${result.attempts} attempt${result.attempts === 1 ? "" : "s"}: ${result.error}`;
    this.deps.logger.warn(
      { channel: channel.id, alert: alert.id },
      `${message}; check the channel's URL and receiver`,
    );
    await this.deps.events.record("notification.failed", message, {
      channel: channel.id,
      alert: type === "test" ? null : alert.id,
      event: type,
      attempts: result.attempts,
      responseStatus: result.responseStatus,
    });
  }

  #track(work: Promise<unknown>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }
}

function describe(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return `no answer within ${timeoutMs} ms`;
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === "string") return `connection failed: ${cause.code}`;
  if (typeof cause?.message === "string") return cause.message;
  return error instanceof Error ? error.message : String(error);
}
