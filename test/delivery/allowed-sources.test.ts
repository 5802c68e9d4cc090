import { describe, expect, it } from "vitest";
import { normaliseSourcePrefix, sourceMatcher } from "../../src/delivery/allowed-sources.js";

describe("allowed sources: URL prefixes on the normalised URL", () => {
  const allowed = sourceMatcher(["https://cdn.example.com", "https://Photos.Example.org:443/public/"]);
  const check = (url: string) => allowed(new URL(url));

  it("admits URLs under a prefix, whatever their spelling", () => {
    expect(check("https://cdn.example.com/a/b.jpg")).toBe(true);
    expect(check("https://CDN.example.com:443/a.jpg")).toBe(true);
    expect(check("https://photos.example.org/public/cat.jpg")).toBe(true);
  });

  it("refuses look-alike hosts, credentials tricks, other ports and schemes, and paths outside the folder", () => {
    for (const url of [
      "https://cdn.example.com.evil.net/a.jpg",
      "https://cdn.example.com@evil.net/a.jpg",
      "https://user:pw@cdn.example.com/a.jpg",
      "https://cdn.example.com:8443/a.jpg",
      "http://cdn.example.com/a.jpg",
      "https://photos.example.org/private/cat.jpg",
      "https://photos.example.org/public/../private/cat.jpg",
      "https://photos.example.org/public/%2e%2e/private/cat.jpg",
    ]) {
      expect(check(url), url).toBe(false);
    }
  });

  it("normalises and validates a prefix when it is saved", () => {
    expect(normaliseSourcePrefix(" https://CDN.example.com ")).toBe("https://cdn.example.com/");
    expect(() => normaliseSourcePrefix("ftp://cdn.example.com/")).toThrow(/http or https/);
    expect(() => normaliseSourcePrefix("https://u:p@cdn.example.com/")).toThrow(/credentials/);
    expect(() => normaliseSourcePrefix("https://cdn.example.com/?a=1")).toThrow(/query/);
    expect(() => normaliseSourcePrefix("not a url")).toThrow();
  });
});
