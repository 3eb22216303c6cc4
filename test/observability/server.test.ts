import { test } from "node:test";
import assert from "node:assert/strict";
import { Metrics } from "../../src/observability/metrics.ts";
import { parseBindAddress, startProbeServer } from "../../src/observability/server.ts";
import { Agent, fetch as undiciFetch } from "undici";
import { KubeMetricsAuthorizer } from "../../src/observability/metrics-auth.ts";
import { selfSignedCertificate } from "../../src/observability/self-signed.ts";
import { startApi } from "../kube-client/harness.ts";

test("parses bind addresses", () => {
  assert.deepEqual(parseBindAddress(":8080"), { host: undefined, port: 8080 });
  assert.deepEqual(parseBindAddress("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
  assert.deepEqual(parseBindAddress("[::1]:9"), { host: "::1", port: 9 });
  assert.equal(parseBindAddress("0"), undefined);
  assert.throws(() => parseBindAddress("localhost"), /invalid bind address/);
});

test("serves /metrics, /healthz and /readyz following the probes", async () => {
  const metrics = new Metrics({ processMetrics: true });
  metrics.queueAdds.inc({ name: "demo" });
  let ready = false;
  const server = await startProbeServer({
    address: "127.0.0.1:0",
    registry: metrics.registry,
    probes: {
      healthz: () => ({ ok: true, detail: "" }),
      readyz: () => ({ ok: ready, detail: "caches not synced" }),
    },
  });
  assert.ok(server);
  try {
    const m = await fetch(`${server.url}/metrics`);
    assert.equal(m.status, 200);
    const text = await m.text();
    assert.match(text, /workqueue_adds_total\{name="demo"\} 1/);
    assert.match(text, /process_cpu_user_seconds_total/, "default Node metrics");
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const notReady = await fetch(`${server.url}/readyz`);
    assert.equal(notReady.status, 503);
    assert.equal(await notReady.text(), "caches not synced");
    ready = true;
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    assert.equal((await fetch(`${server.url}/healthz`, { method: "POST" })).status, 405);
  } finally {
    await server.close();
  }
});

test('"0" disables the server', async () => {
  assert.equal(await startProbeServer({ address: "0" }), undefined);
});

test("secure metrics: HTTPS, a bearer token reviewed by the API server, RBAC decides; probes stay plain", async () => {
  const api = await startApi(undefined, {
    users: {
      "scraper-token": {
        username: "system:serviceaccount:monitoring:prometheus",
        nonResourceURLs: ["/metrics"],
      },
      "tenant-token": { username: "alice" },
    },
  });
  const metrics = new Metrics();
  const server = await startProbeServer({
    address: "127.0.0.1:0",
    registry: metrics.registry,
    tls: selfSignedCertificate({ commonName: "test", dnsNames: ["localhost"] }),
    authorizer: new KubeMetricsAuthorizer({ kube: api.client }),
  });
  assert.ok(server);
  // The certificate is self-signed: the scraper trusts the token exchange, not the certificate.
  const insecure = new Agent({ connect: { rejectUnauthorized: false } });
  const get = async (token?: string) => {
    const res = await undiciFetch(`${server.url}/metrics`, {
      dispatcher: insecure,
      ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
    });
    return { status: res.status, text: await res.text() };
  };
  try {
    assert.match(server.url, /^https:/);
    assert.equal((await get()).status, 401, "no token");
    assert.equal((await get("forged")).status, 401, "a token the API server does not know");
    const forbidden = await get("tenant-token");
    assert.equal(forbidden.status, 403, "a real user without get on /metrics");
    assert.doesNotMatch(forbidden.text, /workqueue/);
    const ok = await get("scraper-token");
    assert.equal(ok.status, 200);
    assert.match(ok.text, /# HELP/);
    const reviews = () => api.server.requestCounts().total;
    const before = reviews();
    for (let i = 0; i < 5; i++) assert.equal((await get("scraper-token")).status, 200);
    assert.equal(reviews(), before, "decisions are remembered: scrapes do not each cost two reviews");
    await assert.rejects(fetch(`${server.url.replace("https:", "http:")}/metrics`), "no plain HTTP");
  } finally {
    await insecure.close();
    await server.close();
    await api.close();
  }
});
