import { describe, expect, it } from "vitest";
import { parseDeliveryPath } from "../../src/delivery/imgproxy-url.js";
import {
  assertSigningKey,
  checkSignature,
  type SigningKey,
  signPath,
  verifySignature,
} from "../../src/delivery/signature.js";
import { ProblemError } from "../../src/errors/problem.js";

/**
 * imgproxy's signing guide (docs.imgproxy.net/usage/signing_url, "Example"):
 * key `secret` and salt `hello`, hex-encoded.
 */
const DOCS_KEY: SigningKey = { id: "docs", key: "736563726574", salt: "68656C6C6F" };
const DOCS_URL =
  "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";

/**
 * The key/salt pair of imgproxy's examples folder; examples/signature.java
 * asserts this signature for the plain-form path.
 */
const EXAMPLES_KEY: SigningKey = {
  id: "examples",
  key: "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881",
  salt: "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5",
};
const EXAMPLES_URL =
  "/m3k5QADfcKPDj-SDI2AIogZbC3FlAXszuwhtWXYqavc/rs:fit:300:300/plain/http://img.example.com/pretty/image.jpg";

describe("imgproxy's published signatures", () => {
  it("the signing guide's worked example verifies (Base64 source split by '/')", () => {
    const request = parseDeliveryPath(DOCS_URL);
    expect(signPath(request.signedPath, DOCS_KEY)).toBe(request.signature);
    expect(verifySignature(request.signature, request.signedPath, [DOCS_KEY])).toBe(DOCS_KEY);
  });

  it("the examples' plain-form URL verifies", () => {
    const request = parseDeliveryPath(EXAMPLES_URL);
    expect(request.signature).toBe("m3k5QADfcKPDj-SDI2AIogZbC3FlAXszuwhtWXYqavc");
    expect(verifySignature(request.signature, request.signedPath, [EXAMPLES_KEY])).toBe(EXAMPLES_KEY);
  });

  it("a URL changed anywhere after the signature no longer verifies", () => {
    for (const tampered of [
      DOCS_URL.replace("300:400", "301:400"),
      DOCS_URL.replace(".png", ".webp"),
      DOCS_URL.replace("g:sm", "g:no"),
    ]) {
      const request = parseDeliveryPath(tampered);
      expect(verifySignature(request.signature, request.signedPath, [DOCS_KEY]), tampered).toBeUndefined();
    }
  });

  it("the wrong key does not verify", () => {
    const request = parseDeliveryPath(DOCS_URL);
    expect(verifySignature(request.signature, request.signedPath, [EXAMPLES_KEY])).toBeUndefined();
  });
});

describe("several active keys (rotation)", () => {
  const old: SigningKey = { id: "old", key: "aa".repeat(32), salt: "bb".repeat(32) };
  const fresh: SigningKey = { id: "new", key: "cc".repeat(32), salt: "dd".repeat(32) };
  const path = "/rs:fit:300:300/plain/https://example.com/a.jpg";

  it("a URL signed by any active key verifies, and names that key", () => {
    expect(verifySignature(signPath(path, old), path, [old, fresh])).toBe(old);
    expect(verifySignature(signPath(path, fresh), path, [old, fresh])).toBe(fresh);
  });

  it("a revoked key's URLs stop verifying", () => {
    expect(verifySignature(signPath(path, old), path, [fresh])).toBeUndefined();
  });

  it("malformed signatures are refused without throwing", () => {
    for (const signature of ["", "x", "unsafe", "_", `${signPath(path, old)}A`, "!".repeat(43)]) {
      expect(verifySignature(signature, path, [old, fresh]), signature).toBeUndefined();
    }
  });

  it("a key or salt that is not hex is refused when stored", () => {
    expect(() => assertSigningKey({ id: "k", key: "abc", salt: "00" })).toThrow(/key must be hex/);
    expect(() => assertSigningKey({ id: "k", key: "00", salt: "zz" })).toThrow(/salt must be hex/);
  });
});

describe("checkSignature: the tenant's policy", () => {
  const key: SigningKey = { id: "k", key: "01".repeat(32), salt: "02".repeat(32) };
  const signedPath = "/w:100/plain/https://example.com/a.jpg";

  it("an unsigned or wrongly signed URL answers 403 invalid-signature", () => {
    for (const signature of ["unsafe", signPath(signedPath.replace("100", "200"), key)]) {
      let caught: unknown;
      try {
        checkSignature({ signature, signedPath }, { keys: [key], acceptUnsigned: false });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ProblemError);
      expect((caught as ProblemError).code).toBe("invalid-signature");
      expect((caught as ProblemError).status).toBe(403);
    }
  });

  it("a tenant without keys refuses every URL unless it accepts unsigned ones", () => {
    expect(() =>
      checkSignature({ signature: "unsafe", signedPath }, { keys: [], acceptUnsigned: false }),
    ).toThrow(/no active signing key/);
    expect(
      checkSignature({ signature: "unsafe", signedPath }, { keys: [], acceptUnsigned: true }),
    ).toBeUndefined();
  });

  it("a correctly signed URL passes and names its key", () => {
    const signature = signPath(signedPath, key);
    expect(checkSignature({ signature, signedPath }, { keys: [key], acceptUnsigned: false })).toBe(key);
  });
});
