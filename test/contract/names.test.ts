import { describe, expect, it } from "vitest";
import { NewChannelBody, NewKeyBody, NewTenantBody, TenantPatchBody } from "../../src/contract/admin.js";

/**
 * Names are shown in the console, in CLI tables and in logs. A character that
 * reorders or hides the text around it lets one tenant's name impersonate
 * another's ("acme\u202Egnp.exe" reads "acmeexe.png").
 */
const HIDDEN: [string, string][] = [
  ["U+202E right-to-left override", "\u202E"],
  ["U+202D left-to-right override", "\u202D"],
  ["U+202A left-to-right embedding", "\u202A"],
  ["U+2066 left-to-right isolate", "\u2066"],
  ["U+2069 pop directional isolate", "\u2069"],
  ["U+200F right-to-left mark", "\u200F"],
  ["U+061C Arabic letter mark", "\u061C"],
  ["U+0085 next line (C1)", "\u0085"],
  ["U+009B control sequence introducer (C1)", "\u009B"],
  ["U+0080 (C1)", "\u0080"],
  ["U+001B escape (C0)", "\u001B"],
  ["U+007F delete", "\u007F"],
  ["U+2028 line separator", "\u2028"],
  ["U+2029 paragraph separator", "\u2029"],
  ["U+200B zero width space", "\u200B"],
  ["U+FEFF zero width no-break space", "\uFEFF"],
  ["U+00AD soft hyphen", "\u00AD"],
  ["a lone surrogate", "\uD800"],
];

describe("names refuse characters that hide or reorder text", () => {
  it.each(HIDDEN)("a tenant name with %s is refused on create and rename", (_label, char) => {
    const name = `acme${char}gnp.exe`;
    expect(NewTenantBody.safeParse({ name }).success).toBe(false);
    expect(TenantPatchBody.safeParse({ name }).success).toBe(false);
  });

  it.each(HIDDEN)("a key or channel name with %s is refused", (_label, char) => {
    expect(NewKeyBody.safeParse({ name: `ci${char}key` }).success).toBe(false);
    expect(
      NewChannelBody.safeParse({ name: `ops${char}alerts`, url: "https://hooks.example/x" }).success,
    ).toBe(false);
  });

  it.each([
    ["Latin with accents", "Café Müller GmbH"],
    ["Arabic", "شركة المثال"],
    ["Hebrew", "חברה לדוגמה"],
    ["Persian with a zero width non-joiner", "می\u200Cخواهم"],
    ["an emoji joined with ZWJ", "team 👩\u200D💻"],
    ["CJK", "株式会社例"],
    ["Devanagari", "उदाहरण कंपनी"],
  ])("a name in %s is accepted as written", (_label, name) => {
    const parsed = NewTenantBody.safeParse({ name });
    expect(parsed.success).toBe(true);
    expect(parsed.data?.name).toBe(name);
  });
});
