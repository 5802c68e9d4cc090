import { describe, expect, it } from "vitest";
import { solidImage } from "../helpers/images.js";
import { startNode } from "../helpers/node.js";
import { createDatabase, hasPostgres, startPostgres } from "../helpers/postgres.js";

/**
 * A node whose management plane is a real PostgreSQL server: the same
 * migrations, the same admin API, and the failure the design promises —
 * the database down stops admin writes with a clear 503, never resizes.
 */
(hasPostgres ? describe : describe.skip)("a node on PostgreSQL", () => {
  it("serves tenants and keys from PostgreSQL, and keeps resizing when the database goes down", async () => {
    const server = await startPostgres();
    try {
      const url = await createDatabase(server.url);
      const running = await startNode({
        database: { url, connectTimeoutMs: 1000, statementTimeoutMs: 2000 },
      });
      const image = await solidImage(200, 100);
      expect((await running.post("/v1/resize?w=50", image)).status).toBe(200);

      await server.stop();
      // Authentication comes from memory: resizing is unaffected.
      for (let i = 0; i < 3; i++) expect((await running.post("/v1/resize?w=50", image)).status).toBe(200);

      const write = await running.admin("POST", "/tenants", { name: "while down" });
      expect(write.status).toBe(503);
      expect(write.headers.get("retry-after")).toBe("5");
      const problem = (await write.json()) as { type: string; detail: string };
      expect(problem.type).toBe("/problems/database-unavailable");
      expect(problem.detail).toMatch(/resizing is unaffected/);
      await running.stop();
    } finally {
      await server.stop();
    }
  });
});
