import { describe, expect, it } from "vitest";
import {
  AddressPolicy,
  classifyAddress,
  parseAddress,
  parseCidr,
} from "../../src/delivery/fetcher/address-policy.js";

describe("classifyAddress: every refused class, and public addresses", () => {
  it.each([
    ["8.8.8.8", "public"],
    ["172.32.0.1", "public"],
    ["100.128.0.1", "public"],
    ["2606:4700::1111", "public"],
    ["2001:4860:4860::8888", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["100.64.0.1", "cgnat"],
    ["100.127.255.255", "cgnat"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["ff02::1", "multicast"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["::", "unspecified"],
    ["255.255.255.255", "broadcast"],
    ["192.0.2.1", "documentation"],
    ["198.51.100.1", "documentation"],
    ["203.0.113.1", "documentation"],
    ["2001:db8::1", "documentation"],
    ["198.18.0.1", "benchmarking"],
    ["240.0.0.1", "reserved"],
    ["192.0.0.8", "reserved"],
    ["4000::1", "reserved"],
    ["not-an-address", "invalid"],
    ["fe80::1%eth0", "invalid"],
  ])("%s is %s", (address, kind) => {
    expect(classifyAddress(address).class).toBe(kind);
  });
});

describe("IPv6 forms carrying an IPv4 address take its class", () => {
  it.each([
    ["::ffff:127.0.0.1", "loopback", "IPv4-mapped", "127.0.0.1"],
    ["::ffff:7f00:1", "loopback", "IPv4-mapped", "127.0.0.1"],
    ["::ffff:169.254.169.254", "link-local", "IPv4-mapped", "169.254.169.254"],
    ["::ffff:100.64.0.1", "cgnat", "IPv4-mapped", "100.64.0.1"],
    ["::10.0.0.1", "private", "IPv4-compatible", "10.0.0.1"],
    ["64:ff9b::a00:1", "private", "NAT64", "10.0.0.1"],
    ["64:ff9b::127.0.0.1", "loopback", "NAT64", "127.0.0.1"],
    ["2002:7f00:1::", "loopback", "6to4", "127.0.0.1"],
    ["2002:a9fe:a9fe::1", "link-local", "6to4", "169.254.169.254"],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback", "Teredo", "127.0.0.1"],
    ["2600::5efe:a00:1", "private", "ISATAP", "10.0.0.1"],
  ])("%s is %s (%s of %s)", (address, kind, form, inner) => {
    expect(classifyAddress(address)).toEqual({ address, class: kind, embedded: { form, address: inner } });
  });

  it("a form carrying a public IPv4 address is public", () => {
    expect(classifyAddress("::ffff:8.8.8.8").class).toBe("public");
    expect(classifyAddress("64:ff9b::808:808").class).toBe("public");
    expect(classifyAddress("2002:808:808::1").class).toBe("public");
  });

  it("NAT64's local-use prefix is refused whatever it carries", () => {
    expect(classifyAddress("64:ff9b:1::808:808").class).toBe("private");
  });
});

describe("AddressPolicy: public only, unless the operator lists a network", () => {
  it("refuses every non-public class by default", () => {
    const policy = new AddressPolicy();
    expect(policy.judge("93.184.216.34").permitted).toBe(true);
    for (const address of ["127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1", "::ffff:10.0.0.1", "::"]) {
      expect(policy.judge(address).permitted, address).toBe(false);
    }
  });

  it("allowNetworks admits exactly the listed networks, IPv4-mapped forms of an IPv4 network included", () => {
    const policy = new AddressPolicy(["127.0.0.1/32", "10.20.0.0/16", "fd00:1::/32"]);
    expect(policy.judge("127.0.0.1").permitted).toBe(true);
    expect(policy.judge("::ffff:127.0.0.1").permitted).toBe(true);
    expect(policy.judge("127.0.0.2").permitted).toBe(false);
    expect(policy.judge("10.20.255.1").permitted).toBe(true);
    expect(policy.judge("10.21.0.1").permitted).toBe(false);
    expect(policy.judge("fd00:1:2::3").permitted).toBe(true);
    expect(policy.judge("fd00:2::3").permitted).toBe(false);
    // A NAT64 path to a listed IPv4 network is another route, not the listed network.
    expect(policy.judge("64:ff9b::a14:1").permitted).toBe(false);
  });

  it("a bad CIDR in the configuration is an error naming it", () => {
    for (const cidr of ["10.0.0.0/33", "nonsense/8", "::/129", "10.0.0.0/x"]) {
      expect(() => parseCidr(cidr), cidr).toThrow(cidr);
    }
    expect(parseCidr("10.0.0.1")).toEqual({ bytes: Uint8Array.from([10, 0, 0, 1]), prefix: 32 });
  });

  it("parses IPv6 in every spelling to the same bytes", () => {
    const expected = parseAddress("0:0:0:0:0:ffff:7f00:1");
    for (const spelling of ["::ffff:127.0.0.1", "::FFFF:7F00:1", "0::ffff:7f00:0001"]) {
      expect(parseAddress(spelling), spelling).toEqual(expected);
    }
  });
});
