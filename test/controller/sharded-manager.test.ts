/**
 * Managers with --shards against the in-memory API server, in one process: the shards are
 * spread over the replicas, each key is reconciled by the holder of its object's shard only,
 * a replica that stops, or whose API traffic is black-holed, loses its shards to the others (its
 * fence closing first), a replica that joins gets
 * its share handed over, and the fence is per object.
 */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { Manager } from "../../src/controller/manager.ts";
import { NotLeaderError } from "../../src/controller/runtime/leader-election.ts";
import { shardOf } from "../../src/controller/runtime/sharding.ts";
import { CloudInstanceResource } from "../../src/kube/resources.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { eventually, silentLogger, startApi } from "../kube-client/harness.ts";
import { instance } from "../kube-client/objects.ts";
import { testConfig } from "./runtime/manager-config.ts";
import type { CloudInstance } from "../../src/api/index.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../../src/kube/connection.ts";
import { startProxy } from "../chaos/proxy.ts";
import type { Reconcile } from "../../src/controller/runtime/controller.ts";
import { shardLabelKey } from "../../src/controller/runtime/shard-watch.ts";
import { InstanceTemplateResource } from "../../src/kube/resources.ts";
import { DRIVERS } from "../../src/providers/registry.ts";
import { outsideKubernetes, ready, startWorld } from "../e2e/harness.ts";
import { desiredMachine } from "../providers/harness.ts";
import { SIMULATORS } from "../sim/all.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi();
});
after(async () => {
  await api.close();
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
});

interface Replica {
  name: string;
  mgr: Manager;
  metrics: Metrics;
  stop: AbortController;
  run: Promise<void>;
}

const SHARDS = 3;
const LEASE_MS = 3_000;
const RETRY_MS = 300;

function replica(
  ns: string,
  name: string,
  log: { by: string; key: string; at: number }[],
  kube: KubeClient = api.client,
  opts: { shardWatch?: "all" | "labels"; reconcile?: Reconcile; shards?: number } = {},
): Replica {
  const metrics = new Metrics({ processMetrics: false });
  const mgr = new Manager({
    config: testConfig({
      namespaces: [ns],
      leaderElect: true,
      leaderElectionId: `${ns}-op`,
      podName: name,
      shards: opts.shards ?? SHARDS,
      // Roomier than the default test timing: two test files share two cores.
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: 2_000,
      retryPeriodMs: RETRY_MS,
      ...(opts.shardWatch ? { shardWatch: opts.shardWatch } : {}),
    }),
    logger: silentLogger,
    metrics,
    kube,
  });
  const cache = mgr.cache(CloudInstanceResource, { shardWatched: true });
  mgr.addController({
    name: "instances",
    for: CloudInstanceResource,
    reconcile: async (key, ctx) => {
      if (opts.reconcile) await opts.reconcile(key, ctx);
      const obj = cache.get(ctx.namespace, ctx.name);
      if (obj) mgr.fence(obj.metadata.uid ?? "");
      log.push({ by: name, key, at: Date.now() });
      await new Promise((r) => setTimeout(r, 5));
      return { requeueAfterMs: 300 };
    },
  });
  const stop = new AbortController();
  const run = mgr.run(stop.signal);
  // Handled here so that a replica stopping on its own is no unhandled rejection.
  run.catch(() => undefined);
  cleanups.push(async () => {
    stop.abort();
    await run.catch(() => undefined);
  });
  return { name, mgr, metrics, stop, run };
}

const owned = (r: Replica): number[] => r.mgr.ownedShards;
const balanced = (rs: Replica[]): boolean => {
  const all = rs.flatMap(owned);
  return all.length === SHARDS && new Set(all).size === SHARDS && rs.every((r) => owned(r).length === 1);
};

test("three replicas split three shards; keys only reach their shard's holder; a stopped replica's shard moves; a joining one gets its share back", async () => {
  const ns = "shard-a";
  const objs: CloudInstance[] = [];
  for (let i = 0; i < 30; i++)
    objs.push(await api.client.create(CloudInstanceResource, instance(ns, `vm-${String(i)}`)));
  const shardOfKey = new Map(
    objs.map((o) => [`${ns}/${o.metadata.name ?? ""}`, shardOf(o.metadata.uid ?? "", SHARDS)]),
  );
  const log: { by: string; key: string; at: number }[] = [];

  const a = replica(ns, "pod-a", log);
  await eventually(() => owned(a).length === SHARDS, "a alone takes every shard", 10_000);
  await eventually(() => new Set(log.map((l) => l.key)).size === 30, "a reconciles every object", 10_000);

  const b = replica(ns, "pod-b", log);
  const c = replica(ns, "pod-c", log);
  await eventually(() => balanced([a, b, c]), "one shard each", 20_000);
  const split = Date.now();
  await eventually(
    () => [b, c].every((r) => log.some((l) => l.by === r.name && l.at > split)),
    "the newcomers reconcile their shards",
    10_000,
  );
  // From now on every reconcile is by the holder of the key's shard.
  const checkFrom = Date.now();
  await new Promise((r) => setTimeout(r, 1_000));
  const holderOf = (s: number) => [a, b, c].find((r) => owned(r).includes(s))?.name;
  for (const l of log.filter((x) => x.at > checkFrom)) {
    const s = shardOfKey.get(l.key);
    assert.ok(s !== undefined);
    assert.equal(l.by, holderOf(s), `${l.key} (shard ${String(s)}) reconciled by its holder`);
  }
  // The fence is per object: a replica refuses an object of another replica's shard.
  const foreign = objs.find((o) => !owned(a).includes(shardOf(o.metadata.uid ?? "", SHARDS)));
  assert.ok(foreign);
  assert.throws(() => a.mgr.fence(foreign.metadata.uid ?? ""), NotLeaderError);
  const mine = objs.find((o) => owned(a).includes(shardOf(o.metadata.uid ?? "", SHARDS)));
  assert.ok(mine);
  a.mgr.fence(mine.metadata.uid ?? "");
  assert.match(await a.metrics.registry.getSingleMetricAsString("cloud_instance_shards_owned"), / 1$/m);

  // c stops (graceful: it releases): a and b take its shard at once, everything still reconciled.
  const cShard = owned(c)[0];
  assert.ok(cShard !== undefined);
  c.stop.abort();
  await c.run;
  await eventually(() => [a, b].flatMap(owned).includes(cShard), "c's shard taken over", 10_000);
  const takeover = Date.now();
  const cKeys = [...shardOfKey].filter(([, s]) => s === cShard).map(([k]) => k);
  await eventually(
    () => cKeys.every((k) => log.some((l) => l.key === k && l.at > takeover && l.by !== "pod-c")),
    "c's objects reconciled by the others",
    10_000,
  );
  assert.ok(!log.some((l) => l.by === "pod-c" && l.at > takeover), "nothing from c after it stopped");

  // c comes back under the same name: it gets one shard handed back.
  const c2 = replica(ns, "pod-c", log);
  await eventually(() => balanced([a, b, c2]), "balanced again", 20_000);
});

test("a replica whose API traffic is black-holed loses its shards (fence first, then the lease) and, still running, gets its share back once healed", async () => {
  const ns = "shard-b";
  for (let i = 0; i < 9; i++) await api.client.create(CloudInstanceResource, instance(ns, `vm-${String(i)}`));
  const log: { by: string; key: string; at: number }[] = [];
  const proxy = await startProxy(api.server.url);
  cleanups.push(() => proxy.close());
  const kubeB = new KubeClient({
    connection: await connect(
      kubeConfigFromString(api.server.kubeconfigYaml().replaceAll(api.server.url, proxy.url)),
    ),
    logger: silentLogger,
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
  });
  cleanups.push(() => kubeB.close());
  const a = replica(ns, "pod-a", log);
  const b = replica(ns, "pod-b", log, kubeB);
  await eventually(
    () => owned(a).length >= 1 && owned(b).length >= 1 && owned(a).length + owned(b).length === SHARDS,
    "split",
    20_000,
  );
  const bShards = owned(b);
  const t0 = Date.now();
  proxy.mode = "blackhole";
  await eventually(() => owned(a).length === SHARDS, "a takes b's shards once their leases expired", 20_000);
  const tookOver = Date.now() - t0;
  // Not before the lease duration measured from b's last renewal (at most a jittered retry period before).
  assert.ok(tookOver >= LEASE_MS - RETRY_MS * 1.2 - 50, `taken over after ${String(tookOver)} ms`);
  assert.deepEqual(owned(b), [], "b knows it lost them");
  for (const s of bShards) assert.ok(owned(a).includes(s));
  const uid = (await api.client.list(CloudInstanceResource, { namespace: ns })).items[0]?.metadata.uid ?? "";
  assert.throws(() => b.mgr.fence(uid), NotLeaderError, "b's fence refuses every object");
  // b stays up (no restart, no relist): once its traffic flows again it rejoins with its share.
  proxy.mode = "pass";
  await eventually(
    () => owned(b).length >= 1 && owned(a).length + owned(b).length === SHARDS,
    "b rejoins with its share",
    30_000,
  );
  assert.equal(await Promise.race([b.run.then(() => "stopped"), Promise.resolve("running")]), "running");
});

test("a rolling change of --shards (1 → 3 → 2 and back to 1): the configurations act one after the other, never two at once on the same objects", async () => {
  const ns = "shard-change";
  for (let i = 0; i < 12; i++)
    await api.client.create(CloudInstanceResource, instance(ns, `vm-${String(i)}`));
  const log: { by: string; key: string; at: number }[] = [];
  const configOf = new Map<string, string>();
  const start = (name: string, shards: number): Replica => {
    configOf.set(name, `--shards=${String(shards)} (${name.split("-")[0] ?? ""})`);
    return replica(ns, name, log, api.client, { shards });
  };
  const reconciledBy = (r: Replica, since: number): number =>
    new Set(log.filter((l) => l.by === r.name && l.at > since).map((l) => l.key)).size;
  const quietFor = async (rs: Replica[], ms: number): Promise<void> => {
    const from = Date.now();
    await new Promise((r) => setTimeout(r, ms));
    for (const r of rs) {
      assert.equal(reconciledBy(r, from), 0, `${r.name} reconciled nothing while another --shards ran`);
      assert.deepEqual(owned(r), [], `${r.name} took no shard`);
    }
  };

  const old = start("old-1", 1);
  await eventually(() => reconciledBy(old, 0) === 12, "the single leader reconciles every object", 10_000);
  // New pods of --shards=3 start before the old one stops, as a rolling update does.
  const a = start("new3-a", 3);
  const b = start("new3-b", 3);
  await quietFor([a, b], 4 * RETRY_MS + 500);
  old.stop.abort();
  await old.run;
  await eventually(() => owned(a).length + owned(b).length === 3, "the --shards=3 pods take over", 15_000);
  const t1 = Date.now();
  await eventually(
    () => new Set(log.filter((l) => l.at > t1 && l.by.startsWith("new3")).map((l) => l.key)).size === 12,
    "every object reconciled by --shards=3",
    10_000,
  );

  // Back to one leader, and a --shards=2 pod as well: neither acts while --shards=3 runs.
  const back = start("back-1", 1);
  const two = start("two2-a", 2);
  await quietFor([back, two], 4 * RETRY_MS + 500);
  assert.equal(back.mgr.isLeader, false, "the single leader waits");
  for (const r of [a, b]) r.stop.abort();
  await Promise.all([a.run, b.run]);
  // --shards=3 gone: --shards=2 takes its shards (no leader holds the id's Lease); the single
  // leader keeps waiting for it.
  await eventually(() => owned(two).length === 2, "--shards=2 takes over", 15_000);
  await quietFor([back], 4 * RETRY_MS + 500);
  two.stop.abort();
  await two.run;
  await eventually(() => back.mgr.isLeader, "the single leader leads once --shards=2 is gone", 15_000);
  const t2 = Date.now();
  await eventually(() => reconciledBy(back, t2) === 12, "and reconciles every object", 10_000);

  // The invariant: in the order of the reconciles, a configuration never comes back once
  // another has acted after it — no two acted at once.
  const order: string[] = [];
  for (const l of [...log].sort((x, y) => x.at - y.at)) {
    const config = configOf.get(l.by) ?? l.by;
    if (order.at(-1) !== config) order.push(config);
  }
  assert.deepEqual(order, [
    "--shards=1 (old)",
    "--shards=3 (new3)",
    "--shards=2 (two2)",
    "--shards=1 (back)",
  ]);
});

test("--shard-watch=labels: each replica caches only its shards' objects, every object is labelled once and made Ready once, a handover moves the objects", async () => {
  const ns = "shard-labels";
  const uids = new Map<string, string>();
  // A third carry the key of replicas that once ran with --shards=7: nobody runs so now.
  const oldKey = shardLabelKey(7);
  for (let i = 0; i < 30; i++) {
    const obj = instance(ns, `vm-${String(i)}`);
    if (i % 3 === 0) obj.metadata.labels = { [oldKey]: "1" };
    const o = await api.client.create(CloudInstanceResource, obj);
    uids.set(o.metadata.name ?? "", o.metadata.uid ?? "");
  }
  const shardOfName = (n: string): number => shardOf(uids.get(n) ?? "", SHARDS);
  const log: { by: string; key: string; at: number }[] = [];
  /**
   * Status writes per object, by replica: a replica makes an object Ready only if it is not
   * yet (by its cache, or by its own memory while its cache has not seen its write).
   */
  const readyWrites: { by: string; name: string }[] = [];
  const replicas: Replica[] = [];
  const makeReady =
    (by: string): Reconcile =>
    async (_key, ctx) => {
      const r = replicas.find((x) => x.name === by);
      const obj = r?.mgr.cache(CloudInstanceResource).get(ctx.namespace, ctx.name);
      if (!r || !obj || obj.status?.phase === "Running") return undefined;
      if (readyWrites.some((w) => w.by === by && w.name === ctx.name)) return undefined;
      r.mgr.fence(obj.metadata.uid ?? "");
      readyWrites.push({ by, name: ctx.name });
      await api.client.patchStatus(CloudInstanceResource, ctx.namespace, ctx.name, {
        status: { phase: "Running" },
      });
      return undefined;
    };
  const start = (name: string): Replica => {
    const r = replica(ns, name, log, api.client, { shardWatch: "labels", reconcile: makeReady(name) });
    replicas.push(r);
    return r;
  };
  const cached = (r: Replica): string[] =>
    r.mgr
      .cache(CloudInstanceResource)
      .list()
      .map((o) => o.metadata.name ?? "")
      .sort();
  const expected = (r: Replica): string[] =>
    [...uids.keys()].filter((n) => owned(r).includes(shardOfName(n))).sort();
  const exact = (rs: Replica[]): boolean =>
    rs.every((r) => JSON.stringify(cached(r)) === JSON.stringify(expected(r)));

  const a = start("pod-a");
  const b = start("pod-b");
  const c = start("pod-c");
  await eventually(() => balanced([a, b, c]), "one shard each", 20_000);
  await eventually(() => exact([a, b, c]), "each cache holds exactly its shard's objects", 20_000);
  const server = async () => (await api.client.listAll(CloudInstanceResource, { namespace: ns })).items;
  await eventually(
    async () => (await server()).every((o) => o.status?.phase === "Running"),
    "every object Ready",
    20_000,
  );
  for (const o of await server())
    assert.equal(
      o.metadata.labels?.[shardLabelKey(SHARDS)],
      String(shardOf(o.metadata.uid ?? "", SHARDS)),
      `${o.metadata.name ?? ""} carries its shard`,
    );
  await eventually(
    async () => (await server()).every((o) => o.metadata.labels?.[oldKey] === undefined),
    "the key of the old --shards removed (no replica of it is alive)",
    20_000,
  );

  // c stops: its shard moves with its objects (listed by the new holder), nothing is made
  // Ready twice, and the objects made after are labelled and cached by their holder only.
  const cShard = owned(c)[0];
  assert.ok(cShard !== undefined);
  c.stop.abort();
  await c.run;
  await eventually(() => [a, b].flatMap(owned).includes(cShard), "c's shard taken over", 10_000);
  await eventually(() => exact([a, b]), "c's objects moved into the new holder's cache", 20_000);
  for (let i = 0; i < 9; i++) {
    const o = await api.client.create(CloudInstanceResource, instance(ns, `late-${String(i)}`));
    uids.set(o.metadata.name ?? "", o.metadata.uid ?? "");
  }
  await eventually(
    async () => (await server()).every((o) => o.status?.phase === "Running") && exact([a, b]),
    "the new objects Ready and cached by their holder only",
    20_000,
  );
  const perObject = new Map<string, number>();
  for (const w of readyWrites) perObject.set(w.name, (perObject.get(w.name) ?? 0) + 1);
  assert.equal(perObject.size, 39);
  assert.deepEqual(
    [...perObject].filter(([, n]) => n !== 1),
    [],
    "every object made Ready exactly once, across replicas and the handover",
  );
});

test("--shard-watch=labels, the whole operator on two replicas: the orphan sweeper never deletes a VM of another shard's object, a template owns its replicas on every shard, a template referenced from another shard is not deleted", async () => {
  const w = await startWorld();
  cleanups.push(() => w.close());
  const SW_SHARDS = 4;
  const args = (pod: string): string[] => [
    "--leader-elect",
    `--shards=${String(SW_SHARDS)}`,
    "--shard-watch=labels",
    `--pod-name=${pod}`,
    "--leader-election-id=sw-op",
    "--leader-election-lease-duration=3s",
    "--leader-election-renew-deadline=2s",
    "--leader-election-retry-period=300ms",
  ];
  const orphans = { scanPeriodMs: 300, policy: "Delete" as const, graceMs: 600 };
  const ops = [
    await w.startOperator({ args: args("op-a"), orphans }),
    await w.startOperator({ args: args("op-b"), orphans }),
  ];
  await eventually(
    () => ops.every((o) => o.manager.ownedShards.length === SW_SHARDS / 2),
    "two shards each",
    20_000,
  );
  const names = Array.from({ length: 8 }, (_, i) => `sw-${String(i)}`);
  for (const n of names) await w.instance(n);
  const vms = new Map<string, string>();
  for (const n of names) vms.set(n, (await w.waitFor(n, ready, "Ready")).status?.instanceID ?? "");
  const shardOfObj = (o: CloudInstance): number => shardOf(o.metadata.uid ?? "", SW_SHARDS);
  const sweeper = ops.find((o) => o.manager.ownedShards.includes(0));
  assert.ok(sweeper);
  const elsewhere = (await Promise.all(names.map((n) => w.get(n)))).filter(
    (o) => !sweeper.manager.ownedShards.includes(shardOfObj(o)),
  );
  assert.ok(elsewhere.length > 0, "some objects are on the other replica's shards (8 UIDs over 4 shards)");
  for (const o of elsewhere)
    assert.equal(
      sweeper.manager.cache(CloudInstanceResource).get("e2e", o.metadata.name ?? ""),
      undefined,
      "the sweeping replica does not cache them",
    );

  // A VM with this cluster's mark whose object never existed: the sweeper deletes it after the
  // grace, which proves it swept with policy Delete meanwhile; every other VM must survive.
  const leftover = await outsideKubernetes("m2s", w.m2s, (d) =>
    d.create(
      desiredMachine(
        SIMULATORS.m2s.spec,
        DRIVERS.m2s.optionsSchema.parse(SIMULATORS.m2s.spec.providerOptions ?? {}),
        {
          ownerUID: "99999999-8888-7777-6666-555555555555",
          clusterID: "e2e",
          namespace: "e2e",
          name: "crashed",
        },
      ),
    ),
  );
  await eventually(() => !w.m2s.vms().some((v) => v.id === leftover.id), "the real orphan deleted", 20_000);
  const left = new Set(w.m2s.vms().map((v) => v.id));
  for (const [n, id] of vms) assert.ok(left.has(id), `${n}'s VM (a live object) is never deleted`);

  // A template on one shard owns replicas on every shard: exactly `replicas` are made.
  await w.kube.create(InstanceTemplateResource, {
    apiVersion: "compute.instance-operator.dev/v1alpha1",
    kind: "InstanceTemplate",
    metadata: { name: "tpl", namespace: "e2e" },
    spec: {
      provider: { name: "m2s", credentialsSecretRef: { name: "m2s-creds" }, endpoint: w.m2s.url },
      region: "fr-par-1",
      plan: "starter",
      image: "ubuntu-22.04",
      replicas: 4,
    },
  });
  await eventually(
    async () => (await w.kube.get(InstanceTemplateResource, "e2e", "tpl")).status?.readyReplicas === 4,
    "4 ready replicas",
    30_000,
  );
  const made = (await w.kube.listAll(CloudInstanceResource, { namespace: "e2e" })).items.filter(
    (i) => i.spec.templateRef?.name === "tpl",
  );
  assert.deepEqual(made.map((i) => i.metadata.name).sort(), ["tpl-0", "tpl-1", "tpl-2", "tpl-3"]);
  assert.ok(new Set(made.map(shardOfObj)).size > 1, "the replicas are spread over several shards");

  // A user's instance naming the template, on a shard the template's holder does not hold,
  // holds the template's deletion although that holder does not cache it.
  const tpl = await w.kube.get(InstanceTemplateResource, "e2e", "tpl");
  const holder = ops.find((o) => o.manager.ownedShards.includes(shardOf(tpl.metadata.uid ?? "", SW_SHARDS)));
  assert.ok(holder);
  let ref: CloudInstance | undefined;
  for (let i = 0; i < 20 && ref === undefined; i++) {
    const o = await w.instance(`ref-${String(i)}`, { templateRef: { name: "tpl" }, plan: undefined });
    if (!holder.manager.ownedShards.includes(shardOfObj(o))) ref = o;
  }
  assert.ok(ref, "an instance on the other replica's shards");
  await w.kube.delete(InstanceTemplateResource, "e2e", "tpl");
  await eventually(
    async () => {
      const t = await w.kube.get(InstanceTemplateResource, "e2e", "tpl");
      const ready = t.status?.conditions?.find((c) => c.type === "Ready");
      return ready?.reason === "InUse" && (ready.message ?? "").includes(ref.metadata.name ?? "");
    },
    "the template waits for the instance on another shard",
    30_000,
  );
  for (let i = 0; i < 4; i++) await w.gone(`tpl-${String(i)}`);
  assert.ok((await w.kube.get(InstanceTemplateResource, "e2e", "tpl")).metadata.deletionTimestamp);
});
