import { describe, expect, it } from "vitest";
import { parseDeliveryPath } from "../../src/delivery/imgproxy-url.js";
import { ProblemError } from "../../src/errors/problem.js";

function rejection(path: string): ProblemError {
  try {
    parseDeliveryPath(path);
  } catch (error) {
    expect(error).toBeInstanceOf(ProblemError);
    return error as ProblemError;
  }
  throw new Error(`accepted ${path}`);
}

/** imgproxy's own documentation example (docs/usage/processing.mdx, "Example"). */
const DOCS_SIGNATURE = "AfrOrF3gWeDA6VOlDG4TzxMv39O7MXnF4CXpKUwGqRM";

describe("parseDeliveryPath: imgproxy's documented URL forms", () => {
  it("reads the plain form with options, the source and the @extension", () => {
    const request = parseDeliveryPath(
      `/${DOCS_SIGNATURE}/pr:sharp/rs:fill:300:400:0/g:sm/plain/http://example.com/images/curiosity.jpg@png`,
    );
    expect(request).toEqual({
      signature: DOCS_SIGNATURE,
      signedPath: "/pr:sharp/rs:fill:300:400:0/g:sm/plain/http://example.com/images/curiosity.jpg@png",
      options: [
        { name: "pr", args: ["sharp"] },
        { name: "rs", args: ["fill", "300", "400", "0"] },
        { name: "g", args: ["sm"] },
      ],
      source: "http://example.com/images/curiosity.jpg",
      sourceEncoding: "plain",
      extension: "png",
    });
  });

  it("reads the Base64 form split by '/' with its .extension, as the same source", () => {
    const request = parseDeliveryPath(
      `/${DOCS_SIGNATURE}/pr:sharp/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png`,
    );
    expect(request.source).toBe("http://example.com/images/curiosity.jpg");
    expect(request.sourceEncoding).toBe("base64");
    expect(request.extension).toBe("png");
    expect(request.options.map((o) => o.name)).toEqual(["pr", "rs", "g"]);
    expect(request.signedPath).toBe(
      "/pr:sharp/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
    );
  });

  it("accepts no options at all and no extension", () => {
    const plain = parseDeliveryPath("/sig/plain/https://example.com/a.jpg");
    expect(plain.options).toEqual([]);
    expect(plain.extension).toBeUndefined();
    expect(plain.signedPath).toBe("/plain/https://example.com/a.jpg");
    const encoded = Buffer.from("https://example.com/a.jpg").toString("base64url");
    expect(parseDeliveryPath(`/sig/${encoded}`).source).toBe("https://example.com/a.jpg");
  });

  it("keeps empty arguments, which imgproxy reads as 'leave this one as it is'", () => {
    const { options } = parseDeliveryPath("/sig/rs::300::1/bg:/plain/https://example.com/a.jpg");
    expect(options).toEqual([
      { name: "rs", args: ["", "300", "", "1"] },
      { name: "bg", args: [""] },
    ]);
  });

  it("percent-decodes a plain source, so '?', '@' and '%' in it survive", () => {
    const request = parseDeliveryPath(
      "/sig/w:10/plain/https://example.com/a%20b%40c.jpg%3Fv%3D1%26x%3D%2525@webp",
    );
    expect(request.source).toBe("https://example.com/a b@c.jpg?v=1&x=%25");
    expect(request.extension).toBe("webp");
    // The signature covers the path as sent, still encoded.
    expect(request.signedPath).toBe("/w:10/plain/https://example.com/a%20b%40c.jpg%3Fv%3D1%26x%3D%2525@webp");
  });

  it("ignores the query string, as imgproxy does (an unencoded '?' ends the path)", () => {
    const request = parseDeliveryPath("/sig/w:10/plain/https://example.com/a.jpg?v=2");
    expect(request.source).toBe("https://example.com/a.jpg");
    expect(request.signedPath).toBe("/w:10/plain/https://example.com/a.jpg");
  });

  it("undoes a proxy's %3A in options and 'https:/host' in a plain source before the signature is checked", () => {
    const request = parseDeliveryPath("/sig/rs%3Afit%3A300/plain/https:/example.com/a.jpg");
    expect(request.options).toEqual([{ name: "rs", args: ["fit", "300"] }]);
    expect(request.source).toBe("https://example.com/a.jpg");
    expect(request.signedPath).toBe("/rs:fit:300/plain/https://example.com/a.jpg");
  });

  it("decodes padded Base64 too, and an empty extension is no extension", () => {
    const padded = Buffer.from("https://example.com/ab.png")
      .toString("base64")
      .replace(/\+/g, "-")
      .replace(/\//g, "_");
    expect(padded.endsWith("=")).toBe(true);
    const request = parseDeliveryPath(`/sig/${padded}.`);
    expect(request.source).toBe("https://example.com/ab.png");
    expect(request.extension).toBeUndefined();
  });
});

describe("parseDeliveryPath: malformed URLs answer bad-request", () => {
  it.each([
    ["no path after the signature", "/sig"],
    ["an empty signature", "//rs:fit:1/plain/https://e.com/a.jpg"],
    ["an empty source", "/sig/rs:fit:1/plain/@png"],
    ["options and no source", "/sig/rs:fit:1/w:3"],
    ["two extensions in a plain source", "/sig/plain/https://e.com/a@b.jpg@png"],
    ["two extensions in a Base64 source", "/sig/aHR0cHM6Ly9lLmNvbS9h.jpg.png"],
    ["a character outside URL-safe Base64", "/sig/aHR0cHM6Ly9lLmNvbS9h+w"],
    ["bad percent-encoding", "/sig/plain/https://e.com/%zz.jpg"],
    ["a relative source", "/sig/plain/images/a.jpg"],
    ["a file: source", "/sig/plain/file:///etc/passwd"],
    ["a Base64 source that is no URL", `/sig/${Buffer.from("not a url").toString("base64url")}`],
  ])("%s", (_what, path) => {
    expect(rejection(path).code).toBe("bad-request");
  });
});
