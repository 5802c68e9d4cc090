/**
 * The job queue's own latency on the fleet's NATS cluster: job messages
 * enqueued at a steady rate through JetStreamJobQueue (the adapter the API
 * nodes use) into a work-queue stream of the harness's own (its own name and
 * durable, so the fleet's workers never pull it), pulled by a few pull loops
 * as worker lanes pull. Each message carries the harness's high-resolution
 * send time; publisher and consumers are both in this process, so one clock
 * times enqueue to delivery. Plain `js.publish` acks are timed the same way
 * for context, and a 1-replica stream beside the 3-replica one shows what
 * Raft replication costs.
 */

import { cpus } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../src/nats/connection.js";
import { JetStreamJobQueue } from "../src/queue/jetstream-queue.js";
import type { Delivery, JobMessage } from "../src/queue/job-queue.js";
import type { BenchConfig } from "./config.js";
import { noisePct, watchCpu } from "./cpu.js";
import { perRoot } from "./fleet.js";
import { quietest } from "./quiet.js";
import type { CpuShare, ProcessSet } from "./types.js";

const say = (text: string) => process.stdout.write(`${text}\n`);

/** Pull loops on the bench stream: as many as the fleet's worker lanes (2 worker nodes × 2). */
export const PULL_LOOPS = 4;
/** Messages of the first second are sent, delivered and acked but not counted: connections and subscriptions warm up. */
const WARMUP_S = 1;
/** After the last send, how long deliveries may still come in. */
const DRAIN_MS = 5_000;

export interface LatencyStats {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles in ms at µs resolution (stats.ts rounds to 0.1 ms: too coarse here). */
export function latencyStats(values: number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  const r = (v: number | undefined) => (v === undefined ? Number.NaN : Math.round(v * 1000) / 1000);
  const mean = sorted.length > 0 ? sorted.reduce((a, b) => a + b, 0) / sorted.length : Number.NaN;
  return {
    n: sorted.length,
    p50: r(at(0.5)),
    p90: r(at(0.9)),
    p99: r(at(0.99)),
    max: r(sorted.at(-1)),
    mean: r(mean),
  };
}

interface Placement {
  replicas: 1 | 3;
  stream: string;
  /** The stream's Raft leader (the server that stores it first and orders it). */
  leader: string | null;
  /** The server this harness's connection is on: a leader elsewhere adds a route hop. */
  connectedTo: string | null;
}

/** Enqueue to delivery through JetStreamJobQueue, `rate` messages per second. */
export interface QueueRun extends Placement {
  targetRate: number;
  pullLoops: number;
  /** Counted messages (after the warm-up second) sent, and delivered (first delivery) within the drain. */
  sent: number;
  delivered: number;
  /** Counted messages sent per second of the counted span. */
  achievedRate: number;
  failedEnqueues: number;
  redeliveries: number;
  /** enqueue() called → pull() returned it. */
  deliveryMs: LatencyStats;
  /** enqueue() called → the stream's ack (the publish round trip, replication included). */
  enqueueAckMs: LatencyStats;
  /** The publisher's ack → the delivery, per message (negative: delivered before the ack reached the publisher). */
  deliveryAfterAckMs: LatencyStats;
  /** The harness (publisher and consumers, one Node process): its CPU and event-loop delay. */
  client: ClientLoad;
  /** How late the publisher's timer sent messages against their schedule. */
  sendLagMs: LatencyStats;
  /** The fleet's share of the machine meanwhile, each process's, and what others took. */
  cpu: CpuShare;
  attempts: number;
  noisy: string | null;
}

/** Plain `js.publish` (no message id, no expectations) to a limits stream: the ack round trip alone. */
export interface PublishRun extends Placement {
  targetRate: number;
  sent: number;
  failed: number;
  ackMs: LatencyStats;
  /** The fleet's share of the machine meanwhile, and the harness's own load. */
  cpu: CpuShare;
  client: ClientLoad;
  /** Set when other processes and steal took more than BENCH_MAX_OTHER_CPU meanwhile (not measured again). */
  noisy: string | null;
}

export interface QueueLatencyResult {
  natsVersion: string | null;
  seconds: number;
  rate: number;
  warmupSeconds: number;
  /** The target: 3 replicas, as the fleet's own job stream. Then 1 replica, for the Raft cost. */
  queue: QueueRun[];
  publish: PublishRun[];
  /** Warnings the queue adapter logged. */
  warnings: string[];
}

/** A message like the API nodes enqueue (W3's spec), plus the harness's send time. */
type BenchJob = JobMessage & { benchSentAt: number };

function job(id: string, sentAt: number): BenchJob {
  const now = Date.now();
  return {
    id,
    tenant: "bench",
    spec: {
      inputFormat: "jpeg",
      outputFormat: "jpeg",
      width: 200,
      height: 200,
      fit: "cover",
      position: "centre",
      enlarge: false,
      strip: true,
      pages: 1,
      limits: { maxInputPixels: 100_000_000, maxOutputDimension: 8192, timeoutMs: 15_000 },
    },
    input: { node: "api-1", key: id, bytes: 262_144, url: "http://127.0.0.1:1" },
    deadline: now + 15_000,
    enqueuedAt: now,
    benchSentAt: sentAt,
  };
}

/**
 * Calls `send(i)` for i = 0.. on a steady schedule of `rate` per second for
 * `seconds`: each at its due time, or as soon after as the timer allows (a
 * late timer sends what is due at once). Resolves with the lags.
 */
async function paced(rate: number, seconds: number, send: (i: number) => void): Promise<number[]> {
  const interval = 1000 / rate;
  const total = Math.round(rate * seconds);
  const lags: number[] = [];
  const start = performance.now();
  for (let i = 0; i < total; ) {
    const now = performance.now();
    while (i < total && start + i * interval <= now) {
      lags.push(now - (start + i * interval));
      send(i++);
    }
    if (i < total)
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, start + i * interval - now)));
  }
  return lags;
}

async function placement(nc: NatsConnection, stream: string, replicas: 1 | 3): Promise<Placement> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  return {
    replicas,
    stream,
    leader: info.cluster?.leader ?? null,
    connectedTo: nc.info?.server_name ?? null,
  };
}

interface QueueSample {
  placement: Placement;
  sent: number;
  delivered: number;
  failed: number;
  redeliveries: number;
  deliveryMs: number[];
  enqueueAckMs: number[];
  afterAckMs: number[];
  sendLagMs: number[];
  client: ClientLoad;
  spanS: number;
}

/** The harness process itself while it publishes and pulls: its share of the machine and its event loop's delays. */
export interface ClientLoad {
  cpuPct: number;
  loopDelayMs: { p50: number; p99: number; max: number };
}

/** Watches this process's CPU and event-loop delay until stopped. */
function watchClient(): { stop(): ClientLoad } {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const cpu = process.cpuUsage();
  const started = performance.now();
  return {
    stop() {
      histogram.disable();
      const used = process.cpuUsage(cpu);
      const wallUs = (performance.now() - started) * 1000 * cpus().length;
      const ms = (ns: number) => Math.round(ns / 1e4) / 100;
      return {
        cpuPct: Math.round(((used.user + used.system) / wallUs) * 1000) / 10,
        loopDelayMs: {
          p50: ms(histogram.percentile(50)),
          p99: ms(histogram.percentile(99)),
          max: ms(histogram.max),
        },
      };
    },
  };
}

/** What happened to one message, on the harness's clock. */
interface Trace {
  sentAt: number;
  ackAt?: number;
  deliveredAt?: number;
  counted: boolean;
}

/** A fresh queue on its own stream, its warnings collected for the report. */
function openBenchQueue(
  nc: NatsConnection,
  stream: string,
  tag: string,
  replicas: 1 | 3,
  warnings: string[],
): Promise<JetStreamJobQueue> {
  const logger = {
    warn: (obj: object, msg: string) => warnings.push(`${stream}: ${msg} ${JSON.stringify(obj)}`),
    info: () => {},
  };
  return JetStreamJobQueue.open(nc, {
    stream,
    subject: `bench.qlat.${tag}.r${replicas}`,
    durable: `bench-qlat-${tag}`,
    capacity: 100_000,
    maxAttempts: 3,
    replicas,
    ackWaitMs: 30_000,
    logger,
  });
}

/** The counted messages' timings: delivery, enqueue ack, and delivery after the ack. */
function summarise(
  counted: Trace[],
): Pick<QueueSample, "sent" | "delivered" | "deliveryMs" | "enqueueAckMs" | "afterAckMs"> {
  const span = (pick: (t: Trace) => number | undefined) =>
    counted.flatMap((t) => {
      const v = pick(t);
      return v === undefined ? [] : [v];
    });
  return {
    sent: counted.length,
    delivered: span((t) => t.deliveredAt).length,
    deliveryMs: span((t) => (t.deliveredAt === undefined ? undefined : t.deliveredAt - t.sentAt)),
    enqueueAckMs: span((t) => (t.ackAt === undefined ? undefined : t.ackAt - t.sentAt)),
    afterAckMs: span((t) =>
      t.ackAt === undefined || t.deliveredAt === undefined ? undefined : t.deliveredAt - t.ackAt,
    ),
  };
}

/** Stamps a message's first delivery on its trace; says which kind of delivery this was. */
function recordDelivery(
  delivery: Delivery,
  traces: Map<string, Trace>,
  at: number,
): "first" | "redelivered" | "seen" {
  if (delivery.attempt > 1) return "redelivered";
  const trace = traces.get(delivery.message.id);
  if (!trace || trace.deliveredAt !== undefined) return "seen";
  // The message's own send time is the one that counts; the map only says which run it is from.
  const sentAt = (delivery.message as Partial<BenchJob>).benchSentAt;
  trace.deliveredAt = at;
  if (typeof sentAt === "number") trace.sentAt = sentAt;
  return "first";
}

/** One run on a fresh stream, deleted afterwards. */
async function queueRunOnce(
  nc: NatsConnection,
  tag: string,
  replicas: 1 | 3,
  rate: number,
  seconds: number,
  warnings: string[],
): Promise<QueueSample> {
  const stream = `BENCH_QLAT_${tag}_R${replicas}`;
  const queue = await openBenchQueue(nc, stream, tag, replicas, warnings);
  try {
    const where = await placement(nc, stream, replicas);
    const warmup = Math.round(rate * WARMUP_S);
    const traces = new Map<string, Trace>();
    const acks: Promise<void>[] = [];
    let delivered = 0;
    let redeliveries = 0;
    let failed = 0;
    let allSent = false;
    const stop = new AbortController();
    const maybeDone = () => {
      if (allSent && delivered + failed >= traces.size) stop.abort();
    };
    const pullLoop = async () => {
      while (!stop.signal.aborted) {
        const delivery = await queue.pull(stop.signal);
        if (!delivery) return;
        const seen = recordDelivery(delivery, traces, performance.now());
        if (seen === "redelivered") redeliveries++;
        else if (seen === "first") delivered++;
        acks.push(delivery.ack().catch((e: unknown) => void warnings.push(`ack: ${String(e)}`)));
        maybeDone();
      }
    };
    const loops = Array.from({ length: PULL_LOOPS }, pullLoop);
    const enqueues: Promise<void>[] = [];
    const client = watchClient();
    const lags = await paced(rate, WARMUP_S + seconds, (i) => {
      const id = `${tag}-r${replicas}-${i}`;
      const t0 = performance.now();
      const trace: Trace = { sentAt: t0, counted: i >= warmup };
      traces.set(id, trace);
      enqueues.push(
        queue.enqueue(job(id, t0)).then(
          () => {
            trace.ackAt = performance.now();
          },
          (e: unknown) => {
            failed++;
            warnings.push(`enqueue ${id}: ${String(e)}`);
          },
        ),
      );
    });
    await Promise.all(enqueues);
    allSent = true;
    maybeDone();
    const timer = setTimeout(() => stop.abort(), DRAIN_MS);
    await Promise.all(loops);
    clearTimeout(timer);
    const clientLoad = client.stop();
    await Promise.all(acks);
    return {
      ...summarise([...traces.values()].filter((t) => t.counted)),
      placement: where,
      failed,
      redeliveries,
      sendLagMs: lags.slice(warmup),
      client: clientLoad,
      spanS: seconds,
    };
  } finally {
    await queue.close();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => false);
  }
}

/** Plain js.publish at `rate` to a limits stream of `replicas`, deleted afterwards. */
async function publishRun(
  nc: NatsConnection,
  tag: string,
  replicas: 1 | 3,
  rate: number,
  seconds: number,
  fleet: number | ProcessSet,
): Promise<PublishRun> {
  const stream = `BENCH_PUB_${tag}_R${replicas}`;
  const subject = `bench.pub.${tag}.r${replicas}`;
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: stream,
    subjects: [subject],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_msgs: 100_000,
  });
  try {
    const where = await placement(nc, stream, replicas);
    const js = jetstream(nc);
    const data = new TextEncoder().encode(JSON.stringify(job(`${tag}-pub`, 0)));
    const warmup = Math.round(rate * WARMUP_S);
    const ackMs: number[] = [];
    const pending: Promise<void>[] = [];
    let failed = 0;
    const cpu = watchCpu(fleet);
    const client = watchClient();
    await paced(rate, WARMUP_S + seconds, (i) => {
      const t0 = performance.now();
      pending.push(
        js.publish(subject, data).then(
          () => {
            if (i >= warmup) ackMs.push(performance.now() - t0);
          },
          () => {
            failed++;
          },
        ),
      );
    });
    await Promise.all(pending);
    return {
      ...where,
      targetRate: rate,
      sent: Math.round(rate * seconds),
      failed,
      ackMs: latencyStats(ackMs),
      cpu: cpu.stop(),
      client: client.stop(),
      noisy: null,
    };
  } finally {
    await jsm.streams.delete(stream).catch(() => false);
  }
}

const fmt = (s: LatencyStats) => `p50 ${s.p50} ms  p99 ${s.p99} ms  max ${s.max} ms`;

interface QueueRunContext {
  config: BenchConfig;
  nc: NatsConnection;
  fleet: number | ProcessSet;
  warnings: string[];
  /** A fresh stream tag per attempt. */
  nextTag: () => string;
}

/** The quietest of a few runs at one replication, with the fleet's CPU meanwhile; said as it goes. */
async function measuredQueueRun(ctx: QueueRunContext, replicas: 1 | 3): Promise<QueueRun> {
  const { config, fleet } = ctx;
  const rate = config.queueRate;
  const seconds = config.queueSeconds;
  const once = async () => {
    const watch = watchCpu(fleet);
    const sample = await queueRunOnce(ctx.nc, ctx.nextTag(), replicas, rate, seconds, ctx.warnings);
    return { sample, cpu: watch.stop() };
  };
  say(
    `\nqueue latency: ${rate} messages/s for ${seconds} s, ${replicas} replica(s), ${PULL_LOOPS} pull loops`,
  );
  const { best, attempts, noisy } = await quietest(config, once, (r) => noisePct(r.cpu));
  const { sample, cpu } = best;
  const run: QueueRun = {
    ...sample.placement,
    targetRate: rate,
    pullLoops: PULL_LOOPS,
    sent: sample.sent,
    delivered: sample.delivered,
    achievedRate: Math.round((sample.sent / sample.spanS) * 10) / 10,
    failedEnqueues: sample.failed,
    redeliveries: sample.redeliveries,
    deliveryMs: latencyStats(sample.deliveryMs),
    enqueueAckMs: latencyStats(sample.enqueueAckMs),
    deliveryAfterAckMs: latencyStats(sample.afterAckMs),
    client: sample.client,
    sendLagMs: latencyStats(sample.sendLagMs),
    cpu,
    attempts,
    noisy,
  };
  say(
    `  delivery ${fmt(run.deliveryMs)}; enqueue ack ${fmt(run.enqueueAckMs)}; ${run.delivered}/${run.sent} delivered` +
      ` (leader ${run.leader}, connected to ${run.connectedTo}); delivery - ack p50 ${run.deliveryAfterAckMs.p50} ms;` +
      ` fleet cpu ${cpu.serverPct}% (${perRoot(cpu, 1)}), other ${cpu.otherPct}%;` +
      ` this process ${run.client.cpuPct}% cpu, event-loop delay p99 ${run.client.loopDelayMs.p99} ms`,
  );
  if (noisy) say(`  NOISY: ${noisy}`);
  return run;
}

/**
 * The queue at `config.queueRate` for `config.queueSeconds` on a 3-replica
 * stream (measured again while noisy, as the matrix's pairs), the same on a
 * 1-replica stream, then plain publishes on both; the fleet idle meanwhile.
 */
export async function queueLatency(
  config: BenchConfig,
  natsUrls: readonly string[],
  fleet: number | ProcessSet,
): Promise<QueueLatencyResult> {
  const rate = config.queueRate;
  const seconds = config.queueSeconds;
  const nc = await connectNats({
    servers: [...natsUrls],
    name: "imgfleet-bench",
    connectTimeoutMs: 2_000,
    attempts: 3,
  });
  const warnings: string[] = [];
  const tag = `${process.pid}${Date.now().toString(36)}`.toUpperCase();
  let attemptNo = 0;
  const nextTag = () => `${tag}${attemptNo++}`;
  try {
    const queue: QueueRun[] = [];
    for (const replicas of [3, 1] as const) {
      queue.push(await measuredQueueRun({ config, nc, fleet, warnings, nextTag }, replicas));
    }
    const publish: PublishRun[] = [];
    for (const replicas of [3, 1] as const) {
      const run = await publishRun(nc, nextTag(), replicas, rate, Math.max(3, seconds / 2), fleet);
      say(
        `plain js.publish, ${replicas} replica(s): ack ${fmt(run.ackMs)} (leader ${run.leader});` +
          ` fleet cpu ${run.cpu.serverPct}% (${perRoot(run.cpu, 1)}), other ${run.cpu.otherPct}%; this process ${run.client.cpuPct}%`,
      );
      publish.push(run);
    }
    return {
      natsVersion: nc.info?.version ?? null,
      seconds,
      rate,
      warmupSeconds: WARMUP_S,
      queue,
      publish,
      warnings: warnings.slice(0, 50),
    };
  } finally {
    await nc.close();
  }
}
