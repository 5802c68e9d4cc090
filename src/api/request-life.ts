import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ProblemError } from "../errors/problem.js";

/**
 * How a request's life ended:
 * - `answered`: its whole answer was written;
 * - `client-closed`: the client closed the connection first (before, during or after its upload);
 * - `server-closed`: this node closed it, draining past `server.shutdownGraceMs`;
 * - `timeout`: Node's request timeout closed it before the request was read.
 */
export type RequestEnd = "answered" | "client-closed" | "server-closed" | "timeout";

/** nginx's "client closed request": the status logged and metered for a client that left before its answer. */
export const CLIENT_CLOSED_STATUS = 499;
/** A connection this node closed while draining, with no answer sent: the service failed the request. */
export const SERVER_CLOSED_STATUS = 503;
/** Node's request timeout writes its own 408 and closes the connection. */
export const REQUEST_TIMEOUT_STATUS = 408;

export interface EndedRequest {
  end: RequestEnd;
  /** The status the client was sent, or the one above for a connection closed before any answer. */
  status: number;
  /** True when the status was really sent (headers committed while the connection was open). */
  answered: boolean;
  totalMs: number;
}

/**
 * The one owner of a request's life. Everything a request takes — its
 * tenant's in-flight slot, its staging reservation, its place in the
 * in-flight gauge, its log line and its usage record — is handed back here,
 * exactly once, when both the connection is done with (the answer written,
 * or the connection closed, whichever comes first) and the handler's work
 * has settled. Neither `onResponse` nor `onRequestAbort` fires for a client
 * that leaves after its upload, so the life listens to the connection itself.
 */
export class RequestLife {
  readonly #connectionGone = new AbortController();
  readonly #releases: (() => void)[] = [];
  readonly #endListeners: ((ended: EndedRequest) => void)[] = [];
  readonly #startedAt = performance.now();
  #working = 0;
  #connection: "open" | "finished" | "closed" = "open";
  #serverClosing = false;
  #committedStatus: number | undefined;
  #recorded = false;
  #ended: EndedRequest | undefined;

  constructor(
    private readonly reply: FastifyReply,
    private readonly onEnded: (ended: EndedRequest) => void,
  ) {}

  /** Aborted when the connection closes before the answer was written: the client (or the node) left. */
  get signal(): AbortSignal {
    return this.#connectionGone.signal;
  }

  get ended(): EndedRequest | undefined {
    return this.#ended;
  }

  /** Something to give back when the request ends; given back at once if it already has. */
  hold(release: () => void): void {
    if (this.#ended) release();
    else this.#releases.push(release);
  }

  /** Called when the request ends, after its resources are given back and before its log line. */
  onEnd(listener: (ended: EndedRequest) => void): void {
    if (this.#ended) listener(this.#ended);
    else this.#endListeners.push(listener);
  }

  /**
   * Runs a handler's work: the request's resources stay held until it
   * settles, even when the client has left (the worker may still read the
   * staged bytes). Work does not start for a connection already gone.
   */
  async work<T>(run: () => Promise<T>): Promise<T> {
    if (this.#connection === "closed" || this.#ended) throw clientGone();
    this.#working++;
    try {
      return await run();
    } finally {
      this.#working--;
      this.#settle();
    }
  }

  /** The answer's headers are about to be written (onSend): from here its status is what the client is sent. */
  commit(status: number): void {
    if (this.#connection === "open") this.#committedStatus = status;
  }

  /**
   * Claims the request's one usage record. At the answer (`atEnd` false) only
   * while the answer is really going out; at the end of the request, always
   * unless the answer already made it.
   */
  claimRecord(atEnd: boolean): boolean {
    if (this.#recorded || (!atEnd && this.#committedStatus === undefined)) return false;
    this.#recorded = true;
    return true;
  }

  /** The connection is done with: `finished` when the whole answer was written, else closed early. */
  connectionEnded(finished: boolean): void {
    if (this.#connection !== "open") return;
    this.#connection = finished ? "finished" : "closed";
    if (!finished) this.#connectionGone.abort();
    this.#settle();
  }

  /** This node is closing the connection itself (drain past its grace period). */
  serverClosing(): void {
    this.#serverClosing = true;
  }

  #settle(): void {
    if (this.#ended || this.#connection === "open" || this.#working > 0) return;
    this.#ended = this.#ending();
    for (const release of this.#releases.splice(0)) release();
    for (const listener of this.#endListeners.splice(0)) listener(this.#ended);
    this.onEnded(this.#ended);
  }

  #ending(): EndedRequest {
    const totalMs = performance.now() - this.#startedAt;
    if (this.#connection === "finished") {
      return { end: "answered", status: this.reply.statusCode, answered: true, totalMs };
    }
    const timedOut = socketError(this.reply)?.code === "ERR_HTTP_REQUEST_TIMEOUT";
    const end: RequestEnd = timedOut ? "timeout" : this.#serverClosing ? "server-closed" : "client-closed";
    // An answer already committed keeps its status (it was journaled and is on its way); else the ending says it.
    if (this.#committedStatus !== undefined) {
      return { end, status: this.#committedStatus, answered: true, totalMs };
    }
    const status = {
      timeout: REQUEST_TIMEOUT_STATUS,
      "server-closed": SERVER_CLOSED_STATUS,
      "client-closed": CLIENT_CLOSED_STATUS,
    }[end];
    return { end, status, answered: false, totalMs };
  }
}

function socketError(reply: FastifyReply): (Error & { code?: string }) | null | undefined {
  return reply.request.raw.socket?.errored as (Error & { code?: string }) | null | undefined;
}

function clientGone(): ProblemError {
  return new ProblemError("timeout", "the client closed the connection before the image was ready");
}

const lives = new WeakMap<FastifyRequest, RequestLife>();
/** Open lives per server, so a drain that closes every connection can say it was the node's doing. */
const openLives = new WeakMap<FastifyInstance, Set<RequestLife>>();

/** The life of a request; every request that reached `onRequest` has one. */
export function lifeOf(request: FastifyRequest): RequestLife {
  const life = lives.get(request);
  if (!life) throw new Error(`request ${request.id} has no life: installRequestLife must run first`);
  return life;
}

/** What the server does when a request's life begins and ends (the in-flight gauge, the log line). */
export interface LifeObserver {
  started(request: FastifyRequest, reply: FastifyReply): void;
  ended(request: FastifyRequest, reply: FastifyReply, ended: EndedRequest): void;
}

/**
 * Gives every request a life as its first hook, ended by whichever comes
 * first of the answer finishing and the connection closing (the response's
 * `close` covers both; the socket's covers a pipelined answer not yet
 * attached to it).
 */
export function installRequestLife(app: FastifyInstance, observer: LifeObserver): void {
  const open = new Set<RequestLife>();
  openLives.set(app, open);
  app.addHook("onRequest", async (request, reply) => {
    observer.started(request, reply);
    const res = reply.raw;
    const socket = request.raw.socket;
    const connectionClosed = () => life.connectionEnded(res.writableFinished);
    const life = new RequestLife(reply, (ended) => {
      open.delete(life);
      socket?.off("close", connectionClosed);
      observer.ended(request, reply, ended);
    });
    lives.set(request, life);
    open.add(life);
    res.once("close", connectionClosed);
    socket?.once("close", connectionClosed);
    if (socket?.destroyed) connectionClosed();
  });
  app.addHook("onSend", async (request, reply, payload) => {
    lives.get(request)?.commit(reply.statusCode);
    return payload;
  });
}

/** Closes every connection of this server (drain past its grace): their requests end as `server-closed`. */
export function closeAllConnections(app: FastifyInstance): void {
  for (const life of openLives.get(app) ?? []) life.serverClosing();
  app.server.closeAllConnections();
}
