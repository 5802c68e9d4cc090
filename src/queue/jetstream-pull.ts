import {
  createInbox,
  type Msg,
  type NatsConnection,
  nanos,
  type Subscription,
} from "@nats-io/transport-node";

/** After the server's own expiry, how long a pull waits for its 408 before it counts as lost (a leader change). */
const LOST_PULL_GRACE_MS = 1_000;

const encoder = new TextEncoder();
const ACK = encoder.encode("+ACK");
const WORKING = encoder.encode("+WPI");
const TERM = encoder.encode("+TERM");

/** A pull request the server refused (409: consumer deleted, too many waiting pulls; 503: no JetStream). */
export class PullRefusedError extends Error {
  override readonly name = "PullRefusedError";
  constructor(
    readonly code: number,
    description: string,
  ) {
    super(`the job consumer refused a pull request: ${code} ${description}`);
  }
}

/**
 * One message delivered by a pull consumer, with its acknowledgements —
 * the few JsMsg operations the job queue uses, on a plain core message.
 */
export class PulledMessage {
  readonly deliveryCount: number;
  readonly streamSequence: number;

  constructor(
    private readonly nc: NatsConnection,
    readonly msg: Msg,
  ) {
    const info = parseAckSubject(msg.reply ?? "");
    this.deliveryCount = info.deliveryCount;
    this.streamSequence = info.streamSequence;
  }

  /** Resolves once the server has recorded the ack (its reply), or rejects after `timeoutMs`. */
  async ackConfirmed(timeoutMs: number): Promise<void> {
    await this.nc.request(this.#reply, ACK, { timeout: timeoutMs });
  }

  nak(delayMs?: number): void {
    const payload = delayMs ? `-NAK ${JSON.stringify({ delay: nanos(delayMs) })}` : "-NAK";
    this.nc.publish(this.#reply, encoder.encode(payload));
  }

  /** nats-server 2.9 ignores a reason after +TERM, so none is sent. */
  term(): void {
    this.nc.publish(this.#reply, TERM);
  }

  working(): void {
    this.nc.publish(this.#reply, WORKING);
  }

  get #reply(): string {
    return this.msg.reply ?? "";
  }
}

type Settle = (outcome: { msg: Msg | null } | { error: Error }) => void;

/** A reply subject with its own subscription, reused pull after pull by whichever caller has it. */
interface Inbox {
  subject: string;
  sub: Subscription;
  /** Set while a pull waits on this inbox. */
  settle?: Settle;
  /** Unsubscribing: never handed out again. */
  retired?: boolean;
}

/**
 * Pull requests for one message each, answered on inboxes that are kept and
 * reused: a job costs the request and the delivery, not a SUB and an UNSUB
 * (which a cluster propagates to every server) as a fresh inbox per pull
 * would. A delivery carries the stream's subject, not the reply subject, so
 * each concurrent pull needs its own subscription: there are as many inboxes
 * as pulls ever ran at once (a worker node's lanes). A message arriving on an
 * inbox nobody waits on (its pull was aborted, or given up as lost) is handed
 * straight back (NAK).
 */
export class JetStreamPuller {
  readonly #nc: NatsConnection;
  readonly #api: string;
  readonly #idle: Inbox[] = [];
  readonly #all: Inbox[] = [];
  /** Started with the first pull: a node that only enqueues (an API node) never needs it. */
  #reconnects: Promise<void> | undefined;

  constructor(nc: NatsConnection, stream: string, durable: string, apiPrefix = "$JS.API") {
    this.#nc = nc;
    this.#api = `${apiPrefix}.CONSUMER.MSG.NEXT.${stream}.${durable}`;
  }

  /** The next message, or null when the request expired empty, was lost or `signal` aborted it. */
  pullOne(expiresMs: number, signal: AbortSignal): Promise<PulledMessage | null> {
    if (signal.aborted) return Promise.resolve(null);
    const inbox = this.#idle.pop() ?? this.#open();
    return new Promise<PulledMessage | null>((resolve, reject) => {
      const settle: Settle = (outcome) => {
        clearTimeout(lost);
        signal.removeEventListener("abort", abandon);
        inbox.settle = undefined;
        if (!inbox.retired) this.#idle.push(inbox);
        if ("error" in outcome) reject(outcome.error);
        else resolve(outcome.msg && new PulledMessage(this.#nc, outcome.msg));
      };
      // The server may still hold this request: retire the inbox, so that it drops the request (no interest left).
      const abandon = () => this.#abandon([inbox]);
      const lost = setTimeout(abandon, expiresMs + LOST_PULL_GRACE_MS);
      signal.addEventListener("abort", abandon, { once: true });
      inbox.settle = settle;
      try {
        const request = JSON.stringify({ batch: 1, expires: nanos(expiresMs) });
        this.#nc.publish(this.#api, encoder.encode(request), { reply: inbox.subject });
      } catch (error) {
        settle({ error: error instanceof Error ? error : new Error(String(error)) });
      }
    });
  }

  /** Stops listening; pulls still waiting end with null. */
  close(): void {
    this.#abandon(this.#all);
    this.#idle.length = 0;
  }

  /** A pull request lives at the server the connection left: the callers re-pull at once instead of waiting it out. */
  async #abandonOnReconnect(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type === "reconnect") this.#abandon(this.#all.filter((inbox) => inbox.settle));
    }
  }

  #abandon(inboxes: Inbox[]): void {
    for (const inbox of [...inboxes]) {
      this.#retire(inbox);
      inbox.settle?.({ msg: null });
    }
  }

  /** Unsubscribes after the messages already received (one may cross the abort on the wire: it is NAKed). */
  #retire(inbox: Inbox): void {
    inbox.retired = true;
    const at = this.#all.indexOf(inbox);
    if (at >= 0) this.#all.splice(at, 1);
    // On a closed connection both refuse; there is nothing left to unsubscribe from then.
    inbox.sub.drain().catch(() => {
      try {
        inbox.sub.unsubscribe();
      } catch {}
    });
  }

  #open(): Inbox {
    this.#reconnects ??= this.#abandonOnReconnect();
    const subject = createInbox();
    const inbox: Inbox = {
      subject,
      sub: this.#nc.subscribe(subject, { callback: (_e, msg) => this.#route(inbox, msg) }),
    };
    this.#all.push(inbox);
    return inbox;
  }

  #route(inbox: Inbox, msg: Msg): void {
    const status = statusOf(msg);
    const settle = inbox.settle;
    if (!settle) {
      if (status === 0 && msg.reply) new PulledMessage(this.#nc, msg).nak();
      return;
    }
    // 100: a heartbeat (none are asked for); 404/408: expired with no message.
    if (status === 100) return;
    if (status === 0) settle({ msg });
    else if (status === 404 || status === 408) settle({ msg: null });
    else settle({ error: new PullRefusedError(status, msg.headers?.description ?? "") });
  }
}

/** The status code of a server notice (no payload, a status line), 0 for a message. */
function statusOf(msg: Msg): number {
  const code = msg.headers?.code ?? 0;
  return code > 0 && msg.data.length === 0 ? code : 0;
}

/** `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, with `<domain>.<account>` after ACK since 2.9's v2 form. */
export function parseAckSubject(reply: string): { deliveryCount: number; streamSequence: number } {
  const tokens = reply.split(".");
  if (tokens.length === 9) tokens.splice(2, 0, "_", "");
  if (tokens.length < 11 || tokens[0] !== "$JS" || tokens[1] !== "ACK") {
    throw new Error(`not a JetStream delivery (reply subject ${JSON.stringify(reply)})`);
  }
  return { deliveryCount: Number(tokens[6]), streamSequence: Number(tokens[7]) };
}
