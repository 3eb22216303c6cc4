import { test } from "node:test";
import assert from "node:assert/strict";
import { Metrics } from "../../src/observability/metrics.ts";
import { parseBindAddress, startProbeServer } from "../../src/observability/server.ts";

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
