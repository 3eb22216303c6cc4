// The fleet gauges follow the cache through a real informer; an update that moves no series is
// skipped, so each case below checks the skip never hides a change that moves one.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Informer } from "../../src/controller/runtime/informer.ts";
import { trackInstancePhases } from "../../src/controller/instance-metrics.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { CloudInstanceResource } from "../../src/kube/resources.ts";
import type { CloudInstance, CloudInstanceStatus } from "../../src/api/index.ts";
import { systemClock } from "../../src/util/clock.ts";
import { eventually, silentLogger, startApi } from "../kube-client/harness.ts";
import { instance } from "../kube-client/objects.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi();
});
after(async () => {
  await api.close();
});

test("phase, drift, plan price and hourly cost move with every update that changes them, and only then", async () => {
  const ns = "fleet";
  const inf = new Informer<CloudInstance>({
    client: api.client,
    resource: CloudInstanceResource,
    namespaces: [ns],
    logger: silentLogger,
    clock: systemClock,
  });
  const metrics = new Metrics();
  trackInstancePhases(inf, metrics);
  const ac = new AbortController();
  const run = inf.run(ac.signal);
  assert.equal(await inf.waitForSync(ac.signal), true);
  const text = (): Promise<string> => metrics.registry.metrics();
  /** Writes `status` and waits until the cache holds that write. */
  const write = async (status: CloudInstanceStatus): Promise<void> => {
    const cur = await api.client.get(CloudInstanceResource, ns, "vm");
    const stored = await api.client.updateStatus(CloudInstanceResource, { ...cur, status });
    await eventually(
      () => inf.get(ns, "vm")?.metadata.resourceVersion === stored.metadata.resourceVersion,
      "the cache holds the write",
    );
  };
  try {
    await api.client.create(CloudInstanceResource, instance(ns, "vm"));
    await eventually(() => inf.get(ns, "vm") !== undefined, "cached");
    assert.match(await text(), /cloud_instances\{provider="m2s",phase="Pending"\} 1\n/);

    await write({
      phase: "Running",
      plan: "business",
      price: { amount: "7.30", currency: "EUR", period: "month" },
    });
    const running = await text();
    assert.match(running, /cloud_instances\{provider="m2s",phase="Pending"\} 0\n/);
    assert.match(running, /cloud_instances\{provider="m2s",phase="Running"\} 1\n/);
    assert.match(
      running,
      /cloud_instance_hourly_cost\{namespace="fleet",provider="m2s",currency="EUR"\} 0.01\n/,
    );

    // Nothing counted changes: every series stays.
    await write({
      phase: "Running",
      plan: "business",
      price: { amount: "7.30", currency: "EUR", period: "month" },
      image: "ubuntu-22.04",
    });
    assert.equal(await text(), running);

    // Only the price: the cost and the plan's price move.
    await write({
      phase: "Running",
      plan: "business",
      price: { amount: "14.60", currency: "EUR", period: "month" },
    });
    const repriced = await text();
    assert.match(
      repriced,
      /cloud_instance_hourly_cost\{namespace="fleet",provider="m2s",currency="EUR"\} 0.02\n/,
    );
    assert.match(
      repriced,
      /cloud_instance_price_per_hour\{provider="m2s",plan="business",currency="EUR"\} 0.02\n/,
    );

    // Only the drift: the drifted series moves, the phase stays.
    const price = { amount: "14.60", currency: "EUR", period: "month" } as const;
    await write({
      phase: "Running",
      plan: "business",
      price,
      drift: [{ field: "tags", desired: "a", observed: "a,b", since: "2026-01-01T00:00:00Z" }],
    });
    assert.match(await text(), /cloud_instance_drifted\{provider="m2s",field="tags"\} 1\n/);
    await write({
      phase: "Running",
      plan: "business",
      price,
      drift: [{ field: "plan", desired: "business", observed: "pro", since: "2026-01-01T00:00:00Z" }],
    });
    const redrifted = await text();
    assert.match(redrifted, /cloud_instance_drifted\{provider="m2s",field="tags"\} 0\n/);
    assert.match(redrifted, /cloud_instance_drifted\{provider="m2s",field="plan"\} 1\n/);
    assert.match(redrifted, /cloud_instances\{provider="m2s",phase="Running"\} 1\n/);
  } finally {
    ac.abort();
    await run;
  }
});
