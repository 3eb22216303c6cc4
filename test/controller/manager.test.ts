import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { LeaderElectionLostError, Manager } from "../../src/controller/manager.ts";
import { LeaderElector } from "../../src/controller/runtime/leader-election.ts";
import type { ReconcileContext } from "../../src/controller/runtime/controller.ts";
import { CloudInstanceResource, LeaseResource } from "../../src/kube/resources.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { systemClock } from "../../src/util/clock.ts";
import { eventually, silentLogger, startApi } from "../kube-client/harness.ts";
import { instance } from "../kube-client/objects.ts";
import { testConfig } from "./runtime/manager-config.ts";
import type { ManagerConfig } from "../../src/controller/manager.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi();
});
after(async () => {
  await api.close();
});

/** Stops whatever a test left running, pass or fail, so a failure cannot hang the file. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
});

/** Runs `mgr` until the test ends (or the test stops it itself). */
function runUntilEnd(mgr: Manager, stop = new AbortController()): Promise<void> {
  const run = mgr.run(stop.signal);
  cleanups.push(async () => {
    stop.abort();
    await run.catch(() => undefined);
  });
  return run;
}

function manager(
  config: Partial<ManagerConfig>,
  reconcile: (key: string, ctx: ReconcileContext) => Promise<undefined> | undefined,
): { mgr: Manager; metrics: Metrics } {
  const metrics = new Metrics({ processMetrics: true });
  const mgr = new Manager({ config: testConfig(config), logger: silentLogger, metrics, kube: api.client });
  mgr.addController({
    name: "instances",
    for: CloudInstanceResource,
    reconcile: async (key, ctx) => await reconcile(key, ctx),
  });
  return { mgr, metrics };
}

test("serves /healthz, /readyz once caches synced, and /metrics with controller and Node metrics", async () => {
  const { mgr } = manager(
    { namespaces: ["probes"], metricsBindAddress: "127.0.0.1:0", healthProbeBindAddress: "localhost:0" },
    () => undefined,
  );
  await api.client.create(CloudInstanceResource, instance("probes", "p"));
  const stop = new AbortController();
  const run = runUntilEnd(mgr, stop);
  await eventually(() => mgr.serverUrls.length === 2 && mgr.hasSynced(), "servers up and synced");
  const [metricsUrl, healthUrl] = mgr.serverUrls;
  assert.equal((await fetch(`${healthUrl}/healthz`)).status, 200);
  assert.equal((await fetch(`${healthUrl}/readyz`)).status, 200);
  await eventually(async () => {
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    return text.includes('controller_runtime_reconcile_total{controller="instances",result="success"} 1');
  }, "reconcile counted in /metrics");
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  for (const name of [
    "workqueue_depth",
    "workqueue_adds_total",
    "controller_runtime_active_workers",
    "nodejs_heap_size_total_bytes",
  ])
    assert.ok(text.includes(name), name);
  stop.abort();
  await run;
  await assert.rejects(fetch(`${healthUrl}/healthz`), "servers closed on shutdown");
});

test("two managers on one Lease: only the leader reconciles; the standby takes over when it stops", async () => {
  const seenBy: Record<string, string[]> = { a: [], b: [] };
  const make = (id: "a" | "b") =>
    manager(
      { namespaces: ["le"], leaderElect: true, leaderElectionId: "le-test", podName: `pod-${id}` },
      (key) => {
        seenBy[id]?.push(key);
        return undefined;
      },
    );
  const a = make("a");
  const stopA = new AbortController();
  const runA = runUntilEnd(a.mgr, stopA);
  await eventually(() => a.mgr.isLeader, "a leads");
  const b = make("b");
  const stopB = new AbortController();
  const runB = runUntilEnd(b.mgr, stopB);
  await eventually(() => b.mgr.hasSynced(), "b synced as a standby");
  await api.client.create(CloudInstanceResource, instance("le", "one"));
  await eventually(() => seenBy.a?.includes("le/one") ?? false, "leader reconciled");
  // Several renew periods pass; the standby must stay idle throughout.
  await eventually(async () => {
    const lease = await api.client.get(LeaseResource, "default", "le-test");
    return (
      lease.spec?.holderIdentity === "pod-a" &&
      Date.parse(lease.spec.renewTime ?? "") > Date.parse(lease.spec.acquireTime ?? "") + 500
    );
  }, "a renewed the lease");
  assert.deepEqual(seenBy.b, []);
  assert.equal(b.mgr.isLeader, false);
  const gaugeA = (await a.metrics.leaderStatus.get()).values[0]?.value;
  assert.equal(gaugeA, 1);

  stopA.abort();
  await runA;
  await eventually(() => b.mgr.isLeader, "b takes over");
  await api.client.create(CloudInstanceResource, instance("le", "two"));
  await eventually(() => seenBy.b?.includes("le/two") ?? false, "new leader reconciles");
  assert.equal(seenBy.a?.includes("le/two"), false);
  const lease = await api.client.get(LeaseResource, "default", "le-test");
  assert.equal(lease.spec?.holderIdentity, "pod-b");
  assert.equal(lease.spec?.leaseTransitions, 1);
  stopB.abort();
  await runB;
});

test("a leader that vanishes without releasing is replaced once its lease expires", async () => {
  const elector = (identity: string) =>
    new LeaderElector({
      client: api.client,
      namespace: "default",
      name: "le-crash",
      identity,
      leaseDurationMs: 1_500,
      renewDeadlineMs: 1_000,
      retryPeriodMs: 200,
      clock: systemClock,
      logger: silentLogger,
    });
  const crashed = elector("crashed");
  assert.equal(await crashed.acquire(new AbortController().signal), true);
  // "crashed" never renews nor releases: like a killed pod.
  const standby = elector("standby");
  const stop = new AbortController();
  assert.equal(await standby.acquire(stop.signal), true);
  const lease = await api.client.get(LeaseResource, "default", "le-crash");
  assert.equal(lease.spec?.holderIdentity, "standby");
  assert.equal(lease.spec?.leaseTransitions, 1);
});

test("losing the lease stops the controllers and run() rejects", async () => {
  let reconciles = 0;
  const { mgr, metrics } = manager(
    { namespaces: ["lost"], leaderElect: true, leaderElectionId: "le-lost", podName: "victim" },
    () => {
      reconciles++;
      return undefined;
    },
  );
  const run = runUntilEnd(mgr);
  await eventually(() => mgr.isLeader, "leads");
  const lease = await api.client.get(LeaseResource, "default", "le-lost");
  await api.client.update(LeaseResource, {
    ...lease,
    spec: {
      ...lease.spec,
      holderIdentity: "thief",
      leaseDurationSeconds: 3600,
      renewTime: new Date().toISOString(),
    },
  });
  await assert.rejects(run, LeaderElectionLostError);
  assert.equal(mgr.isLeader, false);
  assert.equal((await metrics.leaderStatus.get()).values[0]?.value, 0);
  const before = reconciles;
  await api.client.create(CloudInstanceResource, instance("lost", "after"));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(reconciles, before, "no reconcile after losing the lease");
});

test("shutdown drains: in-flight reconciles finish, no new work starts, the lease is released", async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const started: string[] = [];
  const finished: string[] = [];
  let signalAborted = false;
  const { mgr } = manager(
    { namespaces: ["drain"], leaderElect: true, leaderElectionId: "le-drain", maxConcurrentReconciles: 1 },
    async (key, ctx) => {
      started.push(key);
      await gate;
      signalAborted ||= ctx.signal.aborted;
      finished.push(key);
      return undefined;
    },
  );
  await api.client.create(CloudInstanceResource, instance("drain", "slow"));
  await api.client.create(CloudInstanceResource, instance("drain", "queued"));
  const stop = new AbortController();
  const run = runUntilEnd(mgr, stop);
  await eventually(() => started.length === 1, "one reconcile in flight");
  stop.abort();
  let resolved = false;
  void run.then(() => (resolved = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(resolved, false, "run waits for the in-flight reconcile");
  release();
  await run;
  assert.deepEqual(finished, started, "the in-flight reconcile completed");
  assert.equal(started.length, 1, "the queued key was not started after shutdown began");
  assert.equal(signalAborted, false, "finished within the grace period");
  const lease = await api.client.get(LeaseResource, "default", "le-drain");
  assert.ok(!lease.spec?.holderIdentity, "lease released");
});

test("the grace period bounds the drain: a stuck reconcile sees its signal abort", async () => {
  let sawAbort = false;
  let started = false;
  const { mgr } = manager({ namespaces: ["stuck"], shutdownGracePeriodMs: 50 }, async (_key, ctx) => {
    started = true;
    await new Promise<void>((resolve) =>
      ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
    );
    sawAbort = true;
    return undefined;
  });
  await api.client.create(CloudInstanceResource, instance("stuck", "s"));
  const stop = new AbortController();
  const run = runUntilEnd(mgr, stop);
  await eventually(() => started, "reconcile in flight");
  stop.abort();
  await run;
  assert.equal(sawAbort, true);
});
