import { statfsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseNumber, parsePrometheusText, parseSampleLine } from "../../src/ops/prometheus-text.js";
import { solidImage } from "../helpers/images.js";
import { startNode } from "../helpers/node.js";

describe("parsePrometheusText on a running node's /metrics", () => {
  it("reads every line prom-client writes, with types, labels, histograms and the disk gauges", async () => {
    const n = await startNode();
    const ok = await n.post("/v1/resize?w=20", await solidImage(40, 30));
    expect(ok.status).toBe(200);
    const bad = await n.post("/v1/resize?w=abc", await solidImage(40, 30));
    expect(bad.status).toBe(400);
    const text = await (await fetch(`${n.url}/metrics`)).text();

    const e = parsePrometheusText(text);
    expect(e.invalidLines).toBe(0);
    expect(e.types.get("imgfleet_http_request_duration_seconds")).toBe("histogram");
    expect(e.types.get("imgfleet_rejections_total")).toBe("counter");
    expect(e.value("imgfleet_queue_capacity")).toBe(n.node.config.queue.capacity);
    expect(e.value("imgfleet_workers", { state: "idle" })).toBeGreaterThanOrEqual(0);
    expect(e.value("imgfleet_process_process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(e.value("imgfleet_process_nodejs_version_info")).toBe(1);
    expect(e.samples("imgfleet_process_nodejs_version_info")[0]?.labels.version).toBe(process.version);
    expect(e.value("imgfleet_rejections_total", { reason: "bad-option" })).toBe(1);

    // One 200 and one 400 on the resize route: the summed +Inf bucket counts both, as does _count.
    const buckets = e.buckets("imgfleet_http_request_duration_seconds", { route: "/v1/resize" });
    expect(buckets.at(-1)).toEqual({ le: Number.POSITIVE_INFINITY, count: 2 });
    expect(e.sum("imgfleet_http_request_duration_seconds_count", { route: "/v1/resize" })).toBe(2);
    expect(buckets.map((b) => b.le)).toEqual([...buckets.map((b) => b.le)].sort((a, b) => a - b));
    for (let i = 1; i < buckets.length; i++) {
      expect(buckets[i]?.count).toBeGreaterThanOrEqual(buckets[i - 1]?.count ?? 0);
    }

    const fs = statfsSync(n.node.config.dataDir);
    const free = e.value("imgfleet_disk_free_bytes") ?? 0;
    const size = e.value("imgfleet_disk_size_bytes") ?? 0;
    expect(size).toBe(fs.blocks * fs.bsize);
    expect(free).toBeGreaterThan(0);
    expect(free).toBeLessThanOrEqual(size);
  });
});

describe("parsePrometheusText edge cases", () => {
  it("unescapes label values: quotes, backslashes and line breaks", () => {
    const s = parseSampleLine(String.raw`x{path="C:\\tmp",msg="say \"hi\"\nthere",empty=""} 3`);
    expect(s).toEqual({
      name: "x",
      labels: { path: "C:\\tmp", msg: 'say "hi"\nthere', empty: "" },
      value: 3,
    });
    // Commas and braces inside a quoted value are part of it.
    expect(parseSampleLine('y{a="1,2}",b="x"} 1')?.labels).toEqual({ a: "1,2}", b: "x" });
  });

  it("reads NaN, ±Inf, exponents, a trailing comma, empty braces and a timestamp", () => {
    const e = parsePrometheusText(
      [
        '# HELP weird A help text with {braces} and "quotes"',
        "# TYPE weird gauge",
        'weird{k="nan"} NaN',
        'weird{k="inf"} +Inf',
        'weird{k="ninf",} -Inf',
        "weird{} 1.5e-3",
        "plain 42 1700000000000",
        "   ",
        "negative -7",
      ].join("\n"),
    );
    expect(e.invalidLines).toBe(0);
    expect(e.types.get("weird")).toBe("gauge");
    expect(e.value("weird", { k: "nan" })).toBeNaN();
    expect(e.value("weird", { k: "inf" })).toBe(Number.POSITIVE_INFINITY);
    expect(e.value("weird", { k: "ninf" })).toBe(Number.NEGATIVE_INFINITY);
    expect(e.samples("weird").find((s) => Object.keys(s.labels).length === 0)?.value).toBe(0.0015);
    expect(e.value("plain")).toBe(42);
    expect(e.value("negative")).toBe(-7);
    expect(e.value("absent")).toBeUndefined();
    expect(e.sum("absent")).toBeUndefined();
  });

  it("counts malformed lines instead of throwing", () => {
    const e = parsePrometheusText(
      [
        "ok 1",
        'bad{a="unterminated} 1',
        "no_value",
        "two values 1 2 3",
        "bad2{a=x} 1",
        "1leading 1",
        "val abc",
      ].join("\n"),
    );
    expect(e.value("ok")).toBe(1);
    expect(e.invalidLines).toBe(6);
  });

  it("parses numbers as Go writes them and nothing else", () => {
    expect(parseNumber("0")).toBe(0);
    expect(parseNumber("-0.5")).toBe(-0.5);
    expect(parseNumber("1e+06")).toBe(1e6);
    expect(parseNumber(".5")).toBe(0.5);
    expect(parseNumber("+Inf")).toBe(Number.POSITIVE_INFINITY);
    expect(parseNumber("0x10")).toBeUndefined();
    expect(parseNumber("")).toBeUndefined();
    expect(parseNumber("1,5")).toBeUndefined();
  });

  it("sums histogram buckets over label sets and sorts +Inf last", () => {
    const e = parsePrometheusText(
      [
        'h_bucket{le="+Inf",s="a"} 3',
        'h_bucket{le="0.1",s="a"} 1',
        'h_bucket{le="0.1",s="b"} 2',
        'h_bucket{le="+Inf",s="b"} 2',
      ].join("\n"),
    );
    expect(e.buckets("h")).toEqual([
      { le: 0.1, count: 3 },
      { le: Number.POSITIVE_INFINITY, count: 5 },
    ]);
    expect(e.buckets("h", { s: "a" })).toEqual([
      { le: 0.1, count: 1 },
      { le: Number.POSITIVE_INFINITY, count: 3 },
    ]);
    expect(e.buckets("missing")).toEqual([]);
  });
});
