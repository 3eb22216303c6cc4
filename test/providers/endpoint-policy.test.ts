import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EndpointPolicy, isInternalAddress } from "../../src/providers/endpoint-policy.ts";

const DEFAULTS = ["https://api.m2s.cloud/v1", "https://api.vscale.io/v1"];
const ok = (p: EndpointPolicy, url: string) => assert.equal(p.check(url).ok, true, url);
const refused = (p: EndpointPolicy, url: string, why: RegExp) => {
  const v = p.check(url);
  assert.equal(v.ok, false, url);
  if (!v.ok) assert.match(v.message, why);
};

describe("endpoint policy", () => {
  test("by default only the drivers' documented endpoints, over https, under their path", () => {
    const p = new EndpointPolicy([], DEFAULTS);
    ok(p, "https://api.m2s.cloud/v1");
    ok(p, "https://api.m2s.cloud/v1/");
    ok(p, "https://api.m2s.cloud:443/v1/instances");
    refused(p, "http://api.m2s.cloud/v1", /not allowed/);
    refused(p, "https://api.m2s.cloud/v2", /not allowed/);
    refused(p, "https://api.m2s.cloud/v10", /not allowed/);
    refused(p, "https://api.m2s.cloud:8443/v1", /not allowed/);
    refused(p, "https://evil.example/v1", /not allowed.*--allowed-endpoints/);
    refused(p, "https://api.m2s.cloud.evil.example/v1", /not allowed/);
  });

  test("credentials in the URL and non-URLs are refused", () => {
    const p = new EndpointPolicy([], DEFAULTS);
    refused(p, "https://user:pw@api.m2s.cloud/v1", /user name or password/);
    refused(p, "not a url", /not a URL/);
  });

  test("`default` keeps the documented endpoints beside the admin's own", () => {
    const p = new EndpointPolicy(["default", "https://m2s.corp.example/api"], DEFAULTS);
    ok(p, "https://api.vscale.io/v1/scalets");
    ok(p, "https://m2s.corp.example/api");
    const only = new EndpointPolicy(["https://m2s.corp.example/api"], DEFAULTS);
    refused(only, "https://api.vscale.io/v1", /not allowed/);
  });

  test("wildcards match subdomains only; ports may be any", () => {
    const p = new EndpointPolicy(["https://*.example.com", "http://127.0.0.1:*"], DEFAULTS);
    ok(p, "https://a.example.com/x");
    ok(p, "https://a.b.example.com/");
    refused(p, "https://example.com/", /not allowed/);
    refused(p, "https://aexample.com/", /not allowed/);
    ok(p, "http://127.0.0.1:4567/v1");
    refused(p, "http://127.0.0.2:4567/v1", /not allowed/);
  });

  test("internal addresses need an entry naming them", () => {
    assert.throws(() => new EndpointPolicy(["https://*"], DEFAULTS), /wildcard/);
    const p = new EndpointPolicy(["https://*.svc", "http://10.0.0.5:8080", "https://*.nip.io"], DEFAULTS);
    ok(p, "http://10.0.0.5:8080/");
    refused(p, "http://10.0.0.6:8080/", /not allowed/);
    refused(p, "https://10.0.0.5/", /not allowed/);
    assert.equal(p.internalAllowed("10.0.0.5"), true);
    assert.equal(p.internalAllowed("kube-dns.svc"), false, "a wildcard never allows internal addresses");
    assert.equal(
      p.internalAllowed("api.m2s.cloud"),
      false,
      "a driver default never allows internal addresses",
    );
  });

  test("a wildcard entry that happens to match an internal IP literal does not let it through", () => {
    const p = new EndpointPolicy(["http://*.0.0.1:*"], DEFAULTS);
    refused(p, "http://127.0.0.1:8080/", /internal address/);
  });

  test("bad patterns are refused when the flag is read", () => {
    assert.throws(() => new EndpointPolicy(["ftp://x"], DEFAULTS), /not an endpoint pattern/);
    assert.throws(() => new EndpointPolicy(["https://a.*.com"], DEFAULTS), /wildcard/);
  });

  test("internal address ranges", () => {
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "::",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
    ])
      assert.equal(isInternalAddress(a), true, a);
    for (const a of ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1", "::ffff:8.8.8.8"])
      assert.equal(isInternalAddress(a), false, a);
  });

  test("verdicts are remembered per policy: another policy judges the same endpoint by its own list", () => {
    const strict = new EndpointPolicy([], DEFAULTS);
    const loose = new EndpointPolicy(["http://127.0.0.1:*"], DEFAULTS);
    for (let i = 0; i < 3; i++) {
      // Asked again and again (a cached verdict must stay the verdict), alternating policies.
      refused(strict, "http://127.0.0.1:8080/v1", /not allowed/);
      ok(loose, "http://127.0.0.1:8080/v1");
      refused(loose, "http://10.0.0.1:8080/v1", /not allowed/);
    }
    assert.ok(
      Object.isFrozen(strict.check("http://127.0.0.1:8080/v1")),
      "a shared verdict cannot be changed",
    );
  });

  test("more endpoints than are remembered: each is still judged right", () => {
    const p = new EndpointPolicy(["http://127.0.0.1:*"], DEFAULTS);
    for (let round = 0; round < 2; round++)
      for (let port = 1000; port < 1600; port++) {
        ok(p, `http://127.0.0.1:${String(port)}/v1`);
        refused(p, `http://127.0.0.2:${String(port)}/v1`, /not allowed/);
      }
  });
});
