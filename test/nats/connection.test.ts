import { describe, expect, it, onTestFinished } from "vitest";
import { freePort } from "../../src/dev/ports.js";
import {
  connectNats,
  NatsUnreachableError,
  serverVersionWarning,
  versionWarning,
} from "../../src/nats/connection.js";
import { hasNats, natsForTest } from "../helpers/nats.js";

describe.skipIf(!hasNats)("NATS connection", () => {
  it("connects to a real server and reconnects forever once connected", async () => {
    const nats = await natsForTest(1);
    const nc = await connectNats({
      servers: nats.urls,
      name: "test-connect",
      connectTimeoutMs: 2000,
      attempts: 3,
    });
    onTestFinished(() => nc.close());
    expect(nc.info?.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(nc.getServer()).toBe(nats.urls[0]?.replace("nats://", ""));
    await expect(nc.flush()).resolves.toBeUndefined();
  });

  it("fails fast with one error naming every server, the attempts, the time and the cause", async () => {
    const [a, b] = [await freePort(), await freePort()];
    const servers = [`nats://127.0.0.1:${a}`, `nats://127.0.0.1:${b}`];
    const started = Date.now();
    const error = await connectNats({
      servers,
      name: "test-refused",
      connectTimeoutMs: 1000,
      attempts: 3,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error).toBeInstanceOf(NatsUnreachableError);
    const message = (error as Error).message;
    expect(message).toMatch(
      new RegExp(
        `^could not reach NATS at nats://127\\.0\\.0\\.1:${a}, nats://127\\.0\\.0\\.1:${b} after 3 attempts over \\d+\\.\\d s: ECONNREFUSED; check that nats-server is running and nats\\.servers in the config$`,
      ),
    );
    expect((error as NatsUnreachableError).attempts).toBe(3);
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it("warns that the server is too old for production when it is below 2.10.23", async () => {
    const nats = await natsForTest(1);
    const nc = await connectNats({
      servers: nats.urls,
      name: "test-version",
      connectTimeoutMs: 2000,
      attempts: 1,
    });
    onTestFinished(() => nc.close());
    const version = nc.info?.version ?? "";
    if (version === "2.9.10") {
      expect(serverVersionWarning(nc)).toBe(
        "nats-server 2.9.10 is fine for development; production needs >= 2.10.23 (crash-safety fixes, configurable sync_interval)",
      );
    } else {
      expect(serverVersionWarning(nc)).toBe(versionWarning(version));
    }
  });
});

describe("NATS server version check", () => {
  it.each([
    ["2.9.10", true],
    ["2.10.22", true],
    ["2.10.23", false],
    ["2.10.24-beta.1", false],
    ["2.11.0", false],
    ["3.0.0", false],
  ])("%s needs a warning: %s", (version, warns) => {
    expect(versionWarning(version) !== null).toBe(warns);
  });
});
