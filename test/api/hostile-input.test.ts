import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { solidImage } from "../helpers/images.js";
import { useNode } from "../helpers/node.js";

interface Problem {
  type: string;
  status: number;
  detail: string;
  [k: string]: unknown;
}

/** Sends a raw request body and reads the whole answer; the body is written exactly as given. */
function rawPost(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { ...headers, "content-length": body.length } });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("client input is answered 4xx, never 500", () => {
  const node = useNode({ limits: { inputFormats: ["jpeg", "png", "svg"] } });

  it.each(["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"])(
    "position=%s is a 400 bad-option naming the option, not sharp's message",
    async (value) => {
      const res = await node().post(`/v1/resize?w=20&h=20&position=${value}`, await solidImage(40, 30));
      expect(res.status).toBe(400);
      const problem = (await res.json()) as Problem;
      expect(problem.type).toBe("/problems/bad-option");
      expect(problem).toMatchObject({ option: "position", value });
    },
  );

  it.each([
    ["fit", "constructor"],
    ["background", "constructor"],
    ["enlarge", "__proto__"],
    ["format", "toString"],
  ])("%s=%s is a 400 bad-option", async (option, value) => {
    const res = await node().post(`/v1/resize?w=20&${option}=${value}`, await solidImage(40, 30));
    expect(res.status).toBe(400);
    expect(((await res.json()) as Problem).type).toBe("/problems/bad-option");
  });

  it("a multipart body without its closing boundary is a 400 naming the multipart body", async () => {
    const boundary = "----imgfleetboundary";
    const image = await solidImage(40, 30);
    const truncated = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n` +
          "Content-Type: image/jpeg\r\n\r\n",
      ),
      image,
      // no "\r\n--boundary--\r\n": the client stopped before the end of the form
    ]);
    const res = await rawPost(
      `${node().url}/v1/resize?w=20`,
      { ...node().auth, "content-type": `multipart/form-data; boundary=${boundary}` },
      truncated,
    );
    expect(res.status).toBe(400);
    const problem = JSON.parse(res.body) as Problem;
    expect(problem.type).toBe("/problems/bad-request");
    expect(problem.detail).toMatch(/multipart/i);
  });

  it("a multipart Content-Type without a boundary is a 400", async () => {
    const res = await rawPost(
      `${node().url}/v1/resize?w=20`,
      { ...node().auth, "content-type": "multipart/form-data" },
      Buffer.from("--x\r\n\r\n"),
    );
    expect(res.status).toBe(400);
  });

  it("a multipart body cut inside its part headers is a 400", async () => {
    const boundary = "xyz";
    const res = await rawPost(
      `${node().url}/v1/resize?w=20`,
      { ...node().auth, "content-type": `multipart/form-data; boundary=${boundary}` },
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="ima`),
    );
    expect(res.status).toBe(400);
  });

  it("an SVG hiding an external url() behind a CSS escape is a 415 naming it; a plain one renders", async () => {
    const svg = (body: string) =>
      Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">${body}</svg>`);
    const sneaky = svg('<rect width="40" height="20" style="fill:\\75 rl(http://127.0.0.1:9/p)"/>');
    const refused = await node().post("/v1/resize?w=20", sneaky, { "content-type": "image/svg+xml" });
    expect(refused.status).toBe(415);
    const problem = (await refused.json()) as Problem;
    expect(problem).toMatchObject({ type: "/problems/unsupported-format", format: "svg" });
    expect(problem.reason).toContain("url(http://127.0.0.1:9/p) points outside the document");
    const plain = svg('<rect width="40" height="20" fill="url(#none)"/>');
    const served = await node().post("/v1/resize?w=20&format=png", plain, {
      "content-type": "image/svg+xml",
    });
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/png");
  });

  it("an SVG that libvips cannot load is a 4xx, not a 500", async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="-5"><rect/></svg>');
    const res = await node().post("/v1/resize?w=20", svg, { "content-type": "image/svg+xml" });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});
