import { describe, expect, it, onTestFinished } from "vitest";
import { migrate } from "../../src/db/migrate.js";
import { PgliteDatabase } from "../../src/db/pglite-database.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { EventLog } from "../../src/ops/events.js";
import { SelfHealingReport } from "../../src/ops/self-healing.js";

describe("self-healing events", () => {
  it("sums what the node did by itself into one event per kind of action, and records nothing for a quiet minute", async () => {
    const db = await PgliteDatabase.open("memory://self-healing");
    onTestFinished(() => db.close());
    await migrate(db);
    const metrics = createMetrics();
    // Counted before the report started: not this report's business.
    metrics.jobsExpired.inc(7);
    const events = new EventLog(db, "worker-1");
    const report = new SelfHealingReport(metrics, events);
    await report.start();
    onTestFinished(() => report.stop());

    await report.flush();
    expect(await events.list({ limit: 10 })).toEqual([]);

    metrics.jobsExpired.inc(3);
    metrics.workerRestarts.inc({ reason: "timeout" });
    metrics.workerRestarts.inc({ reason: "crash" });
    metrics.usage.segmentsDeleted.inc(2);
    await report.flush();
    const recorded = (await events.list({ limit: 10 })).map((e) => [e.kind, e.message, e.details.count]);
    expect(recorded).toEqual(
      expect.arrayContaining([
        [
          "job.dropped",
          "dropped 3 jobs whose deadline had passed before a worker took them in the last minute",
          3,
        ],
        [
          "job.dropped",
          "stopped 1 job that ran past the per-image time limit and replaced its worker in the last minute",
          1,
        ],
        ["sweep", "deleted 2 usage spool segments whose batches were all committed in the last minute", 2],
      ]),
    );
    expect(recorded).toHaveLength(3);

    await report.flush();
    expect(await events.list({ limit: 10 })).toHaveLength(3);
  });
});
