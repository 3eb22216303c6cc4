import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Informer } from "../../../src/controller/runtime/informer.ts";
import { Reflector } from "../../../src/controller/runtime/reflector.ts";
import { Store } from "../../../src/controller/runtime/store.ts";
import { CloudInstanceResource } from "../../../src/kube/resources.ts";
import type { CloudInstance } from "../../../src/api/index.ts";
import { systemClock, type Clock } from "../../../src/util/clock.ts";
import { eventually, silentLogger, startApi } from "../../kube-client/harness.ts";
import { instance } from "../../kube-client/objects.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi(undefined, { bookmarkIntervalMs: 50 });
});
after(async () => {
  await api.close();
});

/** Fast backoff so reconnects in these tests take milliseconds, not seconds. */
const fastBackoff = { initialMs: 5, maxMs: 50, resetAfterMs: 120_000 };

function informer(namespace: string, clock: Clock = systemClock) {
  const inf = new Informer<CloudInstance>({
    client: api.client,
    resource: CloudInstanceResource,
    namespaces: [namespace],
    logger: silentLogger,
    clock,
    backoff: fastBackoff,
    indexes: { byPlan: (o) => (o.spec.plan ? [o.spec.plan] : []) },
  });
  const log: string[] = [];
  inf.addHandler({
    onAdd: (o) => log.push(`add ${o.metadata.name ?? ""}`),
    onUpdate: (_old, o) => log.push(`update ${o.metadata.name ?? ""}`),
    onDelete: (o) => log.push(`delete ${o.metadata.name ?? ""}`),
  });
  return { inf, log };
}

async function serverNames(namespace: string): Promise<string[]> {
  const list = await api.client.listAll(CloudInstanceResource, { namespace });
  return list.items.map((i) => i.metadata.name ?? "").sort();
}

function cacheNames(inf: Informer<CloudInstance>): string[] {
  return inf
    .list()
    .map((i) => i.metadata.name ?? "")
    .sort();
}

test("lists (paginated) then watches; the cache and indexes follow every change", async () => {
  for (let i = 0; i < 3; i++) await api.client.create(CloudInstanceResource, instance("basic", `pre${i}`));
  const { inf, log } = informer("basic");
  const ac = new AbortController();
  const run = inf.run(ac.signal);
  assert.equal(await inf.waitForSync(ac.signal), true);
  assert.deepEqual(cacheNames(inf), ["pre0", "pre1", "pre2"]);
  await api.client.create(CloudInstanceResource, instance("basic", "live"));
  await api.client.patch(CloudInstanceResource, "basic", "pre0", { spec: { plan: "pro" } });
  await api.client.delete(CloudInstanceResource, "basic", "pre1");
  await eventually(() => log.includes("delete pre1") && log.includes("add live"), "watch events");
  await eventually(() => inf.byIndex("byPlan", "pro").length === 1, "index updated");
  assert.deepEqual(cacheNames(inf), await serverNames("basic"));
  assert.equal(inf.get("basic", "pre0")?.spec.plan, "pro");
  ac.abort();
  await run;
});

test("a watch dropped mid-stream loses no event and resumes without relisting", async () => {
  const { inf, log } = informer("drop");
  const ac = new AbortController();
  const run = inf.run(ac.signal);
  await inf.waitForSync(ac.signal);
  for (let round = 0; round < 5; round++) {
    await api.client.create(CloudInstanceResource, instance("drop", `d${round}`));
    api.server.faults.dropWatches();
    await api.client.create(CloudInstanceResource, instance("drop", `e${round}`));
    await api.client.patch(CloudInstanceResource, "drop", `d${round}`, {
      metadata: { labels: { r: `${round}` } },
    });
  }
  await api.client.delete(CloudInstanceResource, "drop", "d0");
  api.server.faults.dropWatches();
  await eventually(
    async () => cacheNames(inf).join() === (await serverNames("drop")).join(),
    "cache converged",
  );
  await eventually(() => log.includes("delete d0"), "delete seen");
  for (let round = 0; round < 5; round++) {
    assert.ok(log.includes(`add d${round}`), `add d${round}`);
    assert.ok(log.includes(`add e${round}`), `add e${round}`);
    assert.ok(log.includes(`update d${round}`), `update d${round}`);
  }
  assert.equal(inf.get("drop", "d4")?.metadata.labels?.["r"], "4");
  assert.equal(inf.listCount, 1, "resumed from the last resourceVersion, never relisted");
  ac.abort();
  await run;
});

test("a forced 410 Gone relists and converges, reporting what the watch missed", async () => {
  await api.client.create(CloudInstanceResource, instance("expire", "stay"));
  await api.client.create(CloudInstanceResource, instance("expire", "doomed"));
  const { inf, log } = informer("expire");
  const ac = new AbortController();
  const run = inf.run(ac.signal);
  await inf.waitForSync(ac.signal);
  // Everything below happens while no watch is connected, then history is gone.
  api.server.faults.latencyMs = 0;
  api.server.faults.expireHistory();
  api.server.faults.dropWatches();
  await api.client.delete(CloudInstanceResource, "expire", "doomed");
  await api.client.create(CloudInstanceResource, instance("expire", "newcomer"));
  api.server.faults.expireHistory();
  api.server.faults.dropWatches();
  await eventually(
    async () => cacheNames(inf).join() === (await serverNames("expire")).join(),
    "cache converged",
  );
  assert.ok(inf.listCount >= 2, "relisted");
  assert.ok(log.includes("delete doomed"));
  assert.ok(log.includes("add newcomer"));
  ac.abort();
  await run;
});

test("a throwing handler is logged and does not stop other handlers or the cache", async () => {
  const { inf, log } = informer("throwing");
  inf.addHandler({
    onAdd: () => {
      throw new Error("handler bug");
    },
  });
  const ac = new AbortController();
  const run = inf.run(ac.signal);
  await inf.waitForSync(ac.signal);
  await api.client.create(CloudInstanceResource, instance("throwing", "a"));
  await api.client.create(CloudInstanceResource, instance("throwing", "b"));
  await eventually(() => log.includes("add b"), "second event delivered");
  assert.deepEqual(cacheNames(inf), ["a", "b"]);
  ac.abort();
  await run;
});

test("list/watch errors back off 800 ms doubling (injected clock), then recover", async () => {
  const noRetryClient = await api.newClient({ retries: 0 });
  const delays: number[] = [];
  // Records each requested delay and fires at once: timing asserted without waiting.
  const recording: Clock = {
    monotonic: () => performance.now(),
    now: () => Date.now(),
    setTimeout: (fn, ms) => {
      delays.push(ms);
      return setTimeout(fn, 0);
    },
    clearTimeout: (h) => {
      clearTimeout(h);
    },
  };
  const store = new Store<CloudInstance>();
  const seen: string[] = [];
  const reflector = new Reflector<CloudInstance>({
    client: noRetryClient,
    resource: CloudInstanceResource,
    namespace: "backoff",
    store,
    sink: {
      onAdd: (o) => seen.push(o.metadata.name ?? ""),
      onUpdate: () => undefined,
      onDelete: () => undefined,
      onListed: () => undefined,
    },
    logger: silentLogger,
    clock: recording,
    // The backoff draws from [nominal/2, nominal]; 1 pins the nominal doubling.
    random: () => 1,
  });
  await api.client.create(CloudInstanceResource, instance("backoff", "x"));
  api.server.faults.failNext(4, 500);
  const ac = new AbortController();
  const run = reflector.run(ac.signal);
  await eventually(() => reflector.hasSynced, "synced after the failures");
  assert.deepEqual(delays.slice(0, 4), [800, 1600, 3200, 6400]);
  assert.deepEqual(seen, ["x"]);
  ac.abort();
  await run;
});

test("bookmarks advance the resume version without any event for the watched scope", async () => {
  const store = new Store<CloudInstance>();
  const events: string[] = [];
  const reflector = new Reflector<CloudInstance>({
    client: api.client,
    resource: CloudInstanceResource,
    namespace: "bm-watched",
    store,
    sink: {
      onAdd: (o) => events.push(`add ${o.metadata.name ?? ""}`),
      onUpdate: () => events.push("update"),
      onDelete: () => events.push("delete"),
      onListed: () => undefined,
    },
    logger: silentLogger,
    clock: systemClock,
    backoff: fastBackoff,
  });
  const ac = new AbortController();
  const run = reflector.run(ac.signal);
  await eventually(() => reflector.hasSynced, "synced");
  const listed = Number(reflector.resourceVersion);
  // Changes elsewhere move the server's resourceVersion; only bookmarks can tell our watch.
  await api.client.create(CloudInstanceResource, instance("bm-elsewhere", "x1"));
  const latest = Number(
    (await api.client.create(CloudInstanceResource, instance("bm-elsewhere", "x2"))).metadata.resourceVersion,
  );
  await eventually(() => Number(reflector.resourceVersion) >= latest, "bookmark advanced the version");
  assert.ok(Number(reflector.resourceVersion) > listed);
  assert.equal(events.length, 0, "nothing happened in the watched namespace");
  // The advanced version is a valid resume point even once older history is gone.
  api.server.faults.dropWatches();
  await api.client.create(CloudInstanceResource, instance("bm-watched", "after-drop"));
  await eventually(() => events.includes("add after-drop"), "event after resuming");
  assert.equal(reflector.listCount, 1);
  ac.abort();
  await run;
});
