import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { Manager } from "../../../src/controller/manager.ts";
import type { ReconcileContext } from "../../../src/controller/runtime/controller.ts";
import type { Informer } from "../../../src/controller/runtime/informer.ts";
import { CloudInstanceResource, SecretResource } from "../../../src/kube/resources.ts";
import { Metrics } from "../../../src/observability/metrics.ts";
import type { CloudInstance } from "../../../src/api/index.ts";
import { eventually, silentLogger, startApi } from "../../kube-client/harness.ts";
import { instance, secret } from "../../kube-client/objects.ts";
import { testConfig } from "./manager-config.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi();
});
after(async () => {
  await api.close();
});

/** Every manager a test started is stopped after it, pass or fail, so a failure cannot hang the file. */
const running: Harness[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) h.stop.abort();
  await Promise.allSettled(running.map((h) => h.run));
});

class TerminalError extends Error {
  readonly terminal = true;
}

interface Harness {
  mgr: Manager;
  metrics: Metrics;
  stop: AbortController;
  run: Promise<void>;
}

function start(
  namespace: string,
  reconcile: (
    key: string,
    ctx: ReconcileContext,
  ) => Promise<{ requeueAfterMs?: number } | undefined> | { requeueAfterMs?: number } | undefined,
  setup?: (mgr: Manager) => void,
): Harness {
  const metrics = new Metrics();
  const mgr = new Manager({
    config: testConfig({ namespaces: [namespace] }),
    logger: silentLogger,
    metrics,
    kube: api.client,
  });
  mgr.addController({
    name: `test-${namespace}`,
    for: CloudInstanceResource,
    reconcile: async (key, ctx) => await reconcile(key, ctx),
  });
  setup?.(mgr);
  const stop = new AbortController();
  const h = { mgr, metrics, stop, run: mgr.run(stop.signal) };
  running.push(h);
  return h;
}

async function counter(metrics: Metrics, result: string): Promise<number> {
  const v = (await metrics.reconcileTotal.get()).values.find((x) => x.labels["result"] === result);
  return v?.value ?? 0;
}

test("reconciles every object; never the same key on two workers at once", async () => {
  const inFlight = new Set<string>();
  const counts = new Map<string, number>();
  let overlap = false;
  const h = start("workers", async (key) => {
    if (inFlight.has(key)) overlap = true;
    inFlight.add(key);
    await new Promise((r) => setTimeout(r, 2));
    counts.set(key, (counts.get(key) ?? 0) + 1);
    inFlight.delete(key);
    return undefined;
  });
  for (let i = 0; i < 6; i++) await api.client.create(CloudInstanceResource, instance("workers", `w${i}`));
  for (let n = 0; n < 5; n++)
    await api.client.patch(CloudInstanceResource, "workers", "w0", { metadata: { labels: { n: `${n}` } } });
  await eventually(() => counts.size === 6, "all reconciled");
  assert.equal(overlap, false);
  assert.ok((await counter(h.metrics, "success")) >= 6);
  h.stop.abort();
  await h.run;
});

test("errors are retried with backoff until success; exceptions never kill a worker", async () => {
  let attempts = 0;
  const h = start("errors", () => {
    attempts++;
    if (attempts === 1) throw new Error("provider down");
    if (attempts === 2) throw "a string, not an Error"; // eslint-disable-line @typescript-eslint/only-throw-error
    return undefined;
  });
  await api.client.create(CloudInstanceResource, instance("errors", "flaky"));
  await eventually(async () => (await counter(h.metrics, "success")) === 1, "succeeded after retries");
  assert.equal(attempts, 3);
  assert.equal(await counter(h.metrics, "error"), 2);
  const errs = (await h.metrics.reconcileErrors.get()).values[0]?.value;
  assert.equal(errs, 2);
  h.stop.abort();
  await h.run;
});

test("a terminal error is not retried until the object changes", async () => {
  let attempts = 0;
  const h = start("terminal", () => {
    attempts++;
    if (attempts === 1) throw new TerminalError("plan does not exist");
    return undefined;
  });
  await api.client.create(CloudInstanceResource, instance("terminal", "t"));
  await eventually(() => attempts === 1, "first attempt");
  const ctrl = h.mgr;
  assert.ok(ctrl.hasSynced());
  // Retries would come within milliseconds (5 ms backoff); give the queue a few rounds to prove none.
  await eventually(async () => (await counter(h.metrics, "error")) === 1, "error counted");
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(attempts, 1);
  await api.client.patch(CloudInstanceResource, "terminal", "t", { spec: { plan: "pro" } });
  await eventually(() => attempts === 2, "reconciled again after the change");
  h.stop.abort();
  await h.run;
});

test("requeueAfter reconciles the key again later", async () => {
  let attempts = 0;
  const h = start("requeue", () => {
    attempts++;
    return attempts < 3 ? { requeueAfterMs: 20 } : undefined;
  });
  await api.client.create(CloudInstanceResource, instance("requeue", "poll"));
  await eventually(() => attempts === 3, "polled three times");
  assert.equal(await counter(h.metrics, "requeue_after"), 2);
  h.stop.abort();
  await h.run;
});

test("mapped watches (Secret -> instances) and owned objects enqueue the right keys", async () => {
  const reconciled: string[] = [];
  let instances: Informer<CloudInstance> | undefined;
  const h = start(
    "mapped",
    (key) => {
      reconciled.push(key);
      return undefined;
    },
    (mgr) => {
      const cache = mgr.cache(CloudInstanceResource, {
        indexes: {
          bySecret: (o: CloudInstance) =>
            o.spec.provider?.credentialsSecretRef
              ? [`${o.metadata.namespace ?? ""}/${o.spec.provider.credentialsSecretRef.name}`]
              : [],
        },
      });
      instances = cache;
      mgr.addController({
        name: "secret-mapper",
        for: CloudInstanceResource,
        watches: [
          {
            resource: SecretResource,
            map: (s) =>
              cache
                .byIndex("bySecret", `${s.metadata.namespace ?? ""}/${s.metadata.name ?? ""}`)
                .map((o) => `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`),
          },
        ],
        reconcile: (key) => {
          reconciled.push(`via-secret ${key}`);
          return Promise.resolve(undefined);
        },
      });
    },
  );
  await api.client.create(CloudInstanceResource, instance("mapped", "uses-creds"));
  const viaSecret = () => reconciled.filter((k) => k === "via-secret mapped/uses-creds").length;
  await eventually(
    () => reconciled.includes("mapped/uses-creds") && viaSecret() === 1,
    "own kind, both controllers",
  );
  assert.ok(instances);
  await api.client.create(SecretResource, secret("mapped", "creds", { apiKey: "k" }));
  await eventually(() => viaSecret() === 2, "the Secret's change reconciles the instance using it");
  await api.client.create(SecretResource, secret("mapped", "unrelated", { apiKey: "k" }));
  await api.client.patch(CloudInstanceResource, "mapped", "uses-creds", {
    metadata: { labels: { bump: "1" } },
  });
  await eventually(() => viaSecret() === 3, "next change");
  assert.equal(reconciled.filter((k) => k.includes("unrelated")).length, 0);
  h.stop.abort();
  await h.run;
});

test("owned objects (controller ownerReference) enqueue their owner", async () => {
  const reconciled: string[] = [];
  const h = start(
    "owned",
    () => undefined,
    (mgr) => {
      mgr.addController({
        name: "owner",
        for: CloudInstanceResource,
        owns: [SecretResource],
        reconcile: (key) => {
          reconciled.push(key);
          return Promise.resolve(undefined);
        },
      });
    },
  );
  const owner = await api.client.create(CloudInstanceResource, instance("owned", "parent"));
  await eventually(() => reconciled.length === 1, "owner reconciled for itself");
  const child = secret("owned", "child", { k: "v" });
  child.metadata.ownerReferences = [
    {
      apiVersion: CloudInstanceResource.apiVersion,
      kind: "CloudInstance",
      name: "parent",
      uid: owner.metadata.uid ?? "",
      controller: true,
    },
  ];
  await api.client.create(SecretResource, child);
  await eventually(() => reconciled.length === 2, "owner reconciled for its child");
  const stranger = secret("owned", "stranger", { k: "v" });
  stranger.metadata.ownerReferences = [
    {
      apiVersion: CloudInstanceResource.apiVersion,
      kind: "CloudInstance",
      name: "nobody",
      uid: "x",
      controller: false,
    },
  ];
  await api.client.create(SecretResource, stranger);
  // Handlers run as the cache applies a change: once cached, any enqueue has happened.
  const secrets = h.mgr.cache(SecretResource);
  await eventually(() => secrets.get("owned", "stranger") !== undefined, "stranger cached");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(reconciled.includes("owned/nobody"), false, "a non-controller reference is not followed");
  assert.deepEqual([...new Set(reconciled)], ["owned/parent"]);
  h.stop.abort();
  await h.run;
});
