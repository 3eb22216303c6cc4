/**
 * --shard-watch=labels, below the manager: the shard label and its selectors (checked against
 * the in-memory API server's selector parser, which follows the real server's), and a
 * ShardWatch filling a dynamic cache shard by shard from the API server: only held shards'
 * objects are cached, new objects are labelled once by the holder of their shard, a wrong
 * label is corrected, releasing a shard drops its objects.
 */
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Informer, SourceError } from "../../../src/controller/runtime/informer.ts";
import {
  needsShardLabel,
  shardLabelKey,
  shardLabelPatch,
  shardSelector,
  ShardWatch,
  staleShardKeys,
  unlabelledSelector,
} from "../../../src/controller/runtime/shard-watch.ts";
import { shardOf } from "../../../src/controller/runtime/sharding.ts";
import { CloudInstanceResource } from "../../../src/kube/resources.ts";
import { KubeClient } from "../../../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../../../src/kube/connection.ts";
import type { CloudInstance } from "../../../src/api/index.ts";
import { systemClock } from "../../../src/util/clock.ts";
import { eventually, silentLogger, startApi } from "../../kube-client/harness.ts";
import { instance } from "../../kube-client/objects.ts";
import { parseLabelSelector } from "../../kube/selectors.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi(undefined, { bookmarkIntervalMs: 50 });
});
after(async () => {
  await api.close();
});

test("the shard label key names S, is a valid qualified name, and the selectors split objects exactly", () => {
  assert.equal(shardLabelKey(12), "compute.instance-operator.dev/shard-of-12");
  assert.notEqual(shardLabelKey(12), shardLabelKey(6), "another S, another key: old values are never read");
  for (const s of [2, 12, 256]) {
    const [prefix, name] = shardLabelKey(s).split("/");
    assert.ok(prefix !== undefined && name !== undefined);
    // Label key rules: DNS subdomain prefix ≤ 253, name ≤ 63 of [A-Za-z0-9_.-], alphanumeric at both ends.
    assert.ok(prefix.length <= 253 && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(prefix));
    assert.ok(name.length <= 63 && /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(name));
  }
  const S = 4;
  const key = shardLabelKey(S);
  const cases: { labels: Record<string, string> | undefined; shard: number | undefined }[] = [
    { labels: undefined, shard: undefined },
    { labels: { [key]: "2" }, shard: 2 },
    { labels: { [key]: "0" }, shard: 0 },
    { labels: { [key]: "4" }, shard: undefined }, // not a shard of S=4
    { labels: { [key]: "x" }, shard: undefined },
    { labels: { [shardLabelKey(3)]: "1" }, shard: undefined }, // an old S's label
  ];
  const unlabelled = parseLabelSelector(unlabelledSelector(S));
  for (const { labels, shard } of cases) {
    const inShards = Array.from({ length: S }, (_, k) => k).filter((k) =>
      parseLabelSelector(shardSelector(S, k))(labels),
    );
    assert.deepEqual(inShards, shard === undefined ? [] : [shard], JSON.stringify(labels));
    // Every object is in exactly one of: a shard's watch, the labeller's watch.
    assert.equal(unlabelled(labels), shard === undefined, JSON.stringify(labels));
  }
});

test("an object needs a label until it carries the value its UID gives; the patch sets only that", () => {
  const uid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  const S = 12;
  const right = String(shardOf(uid, S));
  const wrong = String((shardOf(uid, S) + 1) % S);
  const obj = (labels?: Record<string, string>): CloudInstance => ({
    ...instance("ns", "a"),
    metadata: { name: "a", namespace: "ns", uid, ...(labels ? { labels } : {}) },
  });
  assert.equal(needsShardLabel(obj(), S), true);
  assert.equal(needsShardLabel(obj({ [shardLabelKey(S)]: wrong }), S), true);
  assert.equal(needsShardLabel(obj({ [shardLabelKey(S)]: right, other: "x" }), S), false);
  assert.equal(
    needsShardLabel(obj({ [shardLabelKey(6)]: right }), S),
    true,
    "the label of another S does not count",
  );
  assert.deepEqual(shardLabelPatch(uid, S), { metadata: { labels: { [shardLabelKey(S)]: right } } });
});

function dynamicCache(ns: string, client: KubeClient = api.client) {
  const inf = new Informer<CloudInstance>({
    client,
    resource: CloudInstanceResource,
    namespaces: [ns],
    logger: silentLogger,
    clock: systemClock,
    backoff: { initialMs: 5, maxMs: 50, resetAfterMs: 120_000 },
    dynamic: true,
  });
  const deleted: string[] = [];
  inf.addHandler({ onDelete: (o) => deleted.push(o.metadata.name ?? "") });
  return { inf, deleted };
}

/** A dynamic cache of `ns` and a running ShardWatch filling it, labelling through `client`. */
function shardWatchOn(
  ns: string,
  shards: number,
  client: KubeClient,
  more: { labelConcurrency?: number; cacheClient?: KubeClient } = {},
) {
  const { cacheClient, ...rest } = more;
  const { inf, deleted } = dynamicCache(ns, cacheClient);
  const watch = new ShardWatch<CloudInstance>({
    informer: inf,
    client,
    resource: CloudInstanceResource,
    shards,
    namespaces: [ns],
    labelSelector: undefined,
    logger: silentLogger,
    clock: systemClock,
    ...rest,
  });
  const stop = new AbortController();
  const runs = Promise.all([inf.run(stop.signal), watch.run(stop.signal)]);
  return { inf, deleted, watch, stop, runs };
}

test("a ShardWatch caches only the held shards, labels their objects once, corrects a wrong label, and drops a released shard's objects", async () => {
  const ns = "sw-a";
  const S = 3;
  const key = shardLabelKey(S);
  const objs: CloudInstance[] = [];
  for (let i = 0; i < 24; i++)
    objs.push(await api.client.create(CloudInstanceResource, instance(ns, `vm-${String(i)}`)));
  const shardOfName = new Map(objs.map((o) => [o.metadata.name ?? "", shardOf(o.metadata.uid ?? "", S)]));
  const namesOf = (shards: number[]): string[] =>
    [...shardOfName]
      .filter(([, s]) => shards.includes(s))
      .map(([n]) => n)
      .sort();
  assert.ok(
    [0, 1, 2].every((s) => namesOf([s]).length > 0),
    "24 UIDs fall in every shard of 3",
  );

  const { inf, deleted, watch, stop, runs } = shardWatchOn(ns, S, api.client);
  try {
    assert.equal(inf.hasSynced(), true, "a dynamic cache has nothing of its own to list");
    assert.deepEqual(inf.list(), [], "nothing cached before a shard is held");

    assert.equal(await watch.acquire(1), true);
    assert.throws(
      () => inf.startSource("shard-1", { labelSelector: "x", scope: { inScope: () => true } }),
      SourceError,
    );
    await eventually(
      () =>
        JSON.stringify(
          inf
            .list()
            .map((o) => o.metadata.name)
            .sort(),
        ) === JSON.stringify(namesOf([1])),
      "shard 1's objects labelled and cached",
      10_000,
    );
    const server = async () => (await api.client.listAll(CloudInstanceResource, { namespace: ns })).items;
    for (const o of await server()) {
      const s = shardOfName.get(o.metadata.name ?? "");
      // Only the held shard's objects are labelled: the others wait for their holder.
      assert.equal(o.metadata.labels?.[key], s === 1 ? "1" : undefined, o.metadata.name);
    }
    // The answer to a PATCH may come after its watch event: wait for the count to settle.
    await eventually(() => watch.labelled === namesOf([1]).length, "one label write per object", 10_000);

    await watch.acquire(2);
    await eventually(() => inf.list().length === namesOf([1, 2]).length, "shards 1 and 2 cached", 10_000);
    // A new object of a held shard is labelled and arrives; one of shard 0 stays out.
    const created: CloudInstance[] = [];
    for (let i = 0; i < 6; i++)
      created.push(await api.client.create(CloudInstanceResource, instance(ns, `new-${String(i)}`)));
    for (const o of created) shardOfName.set(o.metadata.name ?? "", shardOf(o.metadata.uid ?? "", S));
    await eventually(
      () => inf.list().length === namesOf([1, 2]).length,
      "the new objects of held shards cached",
      10_000,
    );
    assert.ok(
      inf.list().every((o) => shardOf(o.metadata.uid ?? "", S) !== 0),
      "nothing of shard 0 cached",
    );

    // A label edited by hand to another held shard: the watch of that shard corrects it, and
    // the object stays cached under its own shard.
    const victim = inf.list().find((o) => shardOf(o.metadata.uid ?? "", S) === 1);
    assert.ok(victim);
    const before = watch.labelled;
    await api.client.patch(CloudInstanceResource, ns, victim.metadata.name ?? "", {
      metadata: { labels: { [key]: "2" } },
    });
    await eventually(
      async () =>
        (await api.client.get(CloudInstanceResource, ns, victim.metadata.name ?? "")).metadata.labels?.[
          key
        ] === "1" && watch.labelled > before,
      "the wrong label corrected",
      10_000,
    );
    await eventually(
      () => inf.get(ns, victim.metadata.name ?? "")?.metadata.labels?.[key] === "1",
      "cached again with its right label",
      10_000,
    );

    // Releasing shard 1 drops exactly its objects (handlers hear deletes), shard 2's stay.
    deleted.length = 0;
    const dropped = await watch.release(1);
    assert.equal(dropped, namesOf([1]).length);
    assert.deepEqual(deleted.sort(), namesOf([1]));
    assert.deepEqual(
      inf
        .list()
        .map((o) => o.metadata.name)
        .sort(),
      namesOf([2]),
    );
    assert.deepEqual(watch.held, [2]);
    // Taken again: listed again before acquire resolves.
    assert.equal(await watch.acquire(1), true);
    assert.equal(inf.list().length, namesOf([1, 2]).length, "listed before acquire resolves");
  } finally {
    stop.abort();
    await runs;
  }
});

/** A GET the gate passed on: what was asked for and the start of the answer. */
interface SeenGet {
  path: string;
  accept: string;
  answer: string;
}

/**
 * An HTTP proxy in front of the API server that holds every PATCH until released (unless
 * `hold` is false) and counts how many it holds at once: what the API server would see of the
 * labeller's writes. GETs are recorded with the start of their answers.
 */
async function patchGate(
  target: string,
  hold = true,
): Promise<{
  url: string;
  gets: SeenGet[];
  held: () => number;
  maxHeld: () => number;
  releaseAll: () => void;
  close: () => Promise<void>;
}> {
  const upstream = new URL(target);
  let held: (() => void)[] = [];
  let maxHeld = 0;
  let open = !hold;
  const gets: SeenGet[] = [];
  const server = createServer((req, res) => {
    const seen: SeenGet | undefined =
      req.method === "GET"
        ? { path: req.url ?? "", accept: req.headers.accept ?? "", answer: "" }
        : undefined;
    if (seen) gets.push(seen);
    const forward = (): void => {
      const up = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          if (seen)
            answer.on("data", (chunk: Buffer) => {
              if (seen.answer.length < 4096) seen.answer += chunk.toString("utf8");
            });
          answer.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      res.on("close", () => up.destroy());
      req.pipe(up);
    };
    if (req.method !== "PATCH" || open) {
      forward();
      return;
    }
    held.push(forward);
    maxHeld = Math.max(maxHeld, held.length);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${String(port)}`,
    gets,
    held: () => held.length,
    maxHeld: () => maxHeld,
    releaseAll: () => {
      open = true;
      const go = held;
      held = [];
      for (const f of go) f();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

test("label writes are bounded: a shard taken with many unlabelled objects sends at most labelConcurrency PATCHes at once, and labels them all", async () => {
  const ns = "sw-bound";
  const S = 2;
  for (let i = 0; i < 30; i++) await api.client.create(CloudInstanceResource, instance(ns, `b-${String(i)}`));
  const gate = await patchGate(api.server.url);
  const client = new KubeClient({
    connection: await connect(
      kubeConfigFromString(api.server.kubeconfigYaml().replace(api.server.url, gate.url)),
    ),
    logger: silentLogger,
  });
  const { inf, watch, stop, runs } = shardWatchOn(ns, S, client, { labelConcurrency: 3 });
  try {
    await eventually(
      async () => (await api.client.listAll(CloudInstanceResource, { namespace: ns })).items.length === 30,
      "created",
      10_000,
    );
    void watch.acquire(0);
    void watch.acquire(1);
    await eventually(() => gate.held() === 3, "three label writes waiting at the API server", 10_000);
    // Everything else waits inside the operator: a burst would have shown up here.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(gate.maxHeld(), 3);
    gate.releaseAll();
    await eventually(() => inf.list().length === 30, "all 30 labelled and cached", 10_000);
    // The answer to the last PATCH may come after its watch event.
    await eventually(() => watch.labelled === 30, "30 label writes answered", 10_000);
    assert.equal(gate.maxHeld(), 3, "never more than three in flight");
  } finally {
    stop.abort();
    await runs;
    await client.close();
    await gate.close();
  }
});

test("the labeller lists and watches metadata only; through a server that cannot send it, it labels from the full objects", async () => {
  const without = await startApi(undefined, { bookmarkIntervalMs: 50, partialMetadata: false });
  try {
    for (const [server, form] of [
      [api.server, "PartialObjectMetadata"],
      [without.server, "CloudInstance"],
    ] as const) {
      const ns = `sw-meta-${form.toLowerCase()}`;
      const admin = server === api.server ? api.client : without.client;
      for (let i = 0; i < 6; i++) await admin.create(CloudInstanceResource, instance(ns, `m-${String(i)}`));
      const gate = await patchGate(server.url, false);
      const client = new KubeClient({
        connection: await connect(
          kubeConfigFromString(server.kubeconfigYaml().replace(server.url, gate.url)),
        ),
        logger: silentLogger,
      });
      const { inf, watch, stop, runs } = shardWatchOn(ns, 1, client, { cacheClient: client });
      try {
        await watch.acquire(0);
        await eventually(() => inf.list().length === 6, `${form}: all 6 labelled and cached`, 10_000);
        // The shard's cache still holds whole objects: only the labeller's reads are slimmed.
        assert.ok(inf.list().every((o) => o.spec.provider?.name === "m2s"));
        await admin.create(CloudInstanceResource, instance(ns, "late"));
        await eventually(
          () => inf.list().length === 7,
          `${form}: a new object labelled from its watch event`,
          10_000,
        );
        const labeller = gate.gets.filter((g) =>
          new URL(g.path, gate.url).searchParams.get("labelSelector")?.includes(" notin ("),
        );
        const lists = labeller.filter((g) => !g.path.includes("watch=true"));
        const watches = labeller.filter((g) => g.path.includes("watch=true"));
        assert.ok(lists.length > 0 && watches.length > 0, "the labeller listed and watched through the gate");
        for (const g of lists)
          assert.match(
            g.accept,
            /^application\/json;as=PartialObjectMetadataList;g=meta\.k8s\.io;v=v1, application\/json$/,
          );
        for (const g of watches)
          assert.match(
            g.accept,
            /^application\/json;as=PartialObjectMetadata;g=meta\.k8s\.io;v=v1, application\/json$/,
          );
        // What came back: metadata only, or the whole objects from the server that cannot.
        const answered = labeller.map((g) => g.answer).join("");
        assert.match(answered, new RegExp(`"kind":"${form}`));
        if (form === "PartialObjectMetadata") assert.doesNotMatch(answered, /"spec"/);
      } finally {
        stop.abort();
        await runs;
        await client.close();
        await gate.close();
      }
    }
  } finally {
    await without.close();
  }
});

test("the label keys of another S stay while replicas of it may be alive, and go once they are not: from cached objects, shards acquired later and new objects, in the label's own write", async () => {
  const ns = "sw-stale";
  const S = 2;
  const old = shardLabelKey(5);
  assert.deepEqual(
    staleShardKeys(
      {
        ...instance(ns, "x"),
        metadata: { name: "x", labels: { [old]: "1", [shardLabelKey(S)]: "0", a: "b" } },
      },
      S,
    ),
    [old],
  );
  assert.deepEqual(
    shardLabelPatch("u", S, [old]).metadata.labels[old],
    null,
    "a merge patch removes with null",
  );
  const objs: CloudInstance[] = [];
  const inShard0 = (): number => objs.filter((o) => shardOf(o.metadata.uid ?? "", S) === 0).length;
  // UIDs are random: ten objects, and more while one shard is still empty.
  for (let i = 0; i < 64 && (i < 10 || inShard0() === 0 || inShard0() === objs.length); i++)
    objs.push(await api.client.create(CloudInstanceResource, instance(ns, `s-${String(i)}`, { [old]: "3" })));
  const shard0 = inShard0();
  assert.ok(shard0 > 0 && shard0 < objs.length, "the UIDs fall in both shards");

  const server = async () => (await api.client.listAll(CloudInstanceResource, { namespace: ns })).items;
  const { inf, watch, stop, runs } = shardWatchOn(ns, S, api.client);
  try {
    await watch.acquire(0);
    await eventually(() => inf.list().length === shard0, "shard 0 labelled and cached", 10_000);
    assert.ok(
      (await server()).every((o) => o.metadata.labels?.[old] === "3"),
      "replicas of --shards=5 may be alive: their key stays",
    );
    watch.othersGone = true;
    await eventually(
      async () =>
        (await server()).filter((o) => o.metadata.labels?.[old] === undefined).length === shard0 &&
        inf.list().every((o) => o.metadata.labels?.[old] === undefined),
      "gone from the cached objects (held shard 0) only",
      10_000,
    );
    await watch.acquire(1);
    await eventually(
      async () => (await server()).every((o) => o.metadata.labels?.[old] === undefined),
      "and from shard 1's objects once acquired",
      10_000,
    );
    const before = watch.labelled;
    await api.client.create(CloudInstanceResource, instance(ns, "s-new", { [old]: "3" }));
    await eventually(
      async () => {
        const o = await api.client.get(CloudInstanceResource, ns, "s-new");
        return o.metadata.labels?.[old] === undefined && o.metadata.labels?.[shardLabelKey(S)] !== undefined;
      },
      "a new object labelled and cleaned",
      10_000,
    );
    await eventually(() => watch.labelled === before + 1, "in one write", 10_000);
  } finally {
    stop.abort();
    await runs;
  }
});
