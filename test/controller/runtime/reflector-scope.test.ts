/**
 * Scoped reflectors sharing one store (--shard-watch=labels: one per held shard). Their
 * streams are not ordered with each other: a name deleted and recreated in another scope can
 * reach the store from the new scope before the old scope's stream delivers the deletion. A
 * late event of the old object must neither overwrite nor delete the new one.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { later, Reflector } from "../../../src/controller/runtime/reflector.ts";
import { Store } from "../../../src/controller/runtime/store.ts";
import { CloudInstanceResource } from "../../../src/kube/resources.ts";
import type { CloudInstance } from "../../../src/api/index.ts";
import { systemClock } from "../../../src/util/clock.ts";
import { eventually, silentLogger, startApi } from "../../kube-client/harness.ts";
import { instance } from "../../kube-client/objects.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi(undefined, { bookmarkIntervalMs: 50 });
});
after(async () => {
  await api.close();
});

const meta = (resourceVersion: string, creationTimestamp: string) =>
  ({ metadata: { resourceVersion, creationTimestamp } }) as CloudInstance;

test("later: by resourceVersion when both are integers (even within one second), else by creation time", () => {
  assert.equal(later(meta("120", "2026-01-01T00:00:00Z"), meta("99", "2026-01-01T00:00:00Z")), true);
  assert.equal(later(meta("99", "2026-01-01T00:00:00Z"), meta("120", "2026-01-01T00:00:00Z")), false);
  assert.equal(later(meta("a", "2026-01-01T00:00:01Z"), meta("b", "2026-01-01T00:00:00Z")), true);
  assert.equal(later(meta("a", "2026-01-01T00:00:00Z"), meta("b", "2026-01-01T00:00:01Z")), false);
});

test("a name recreated in another scope: the old scope's late update and deletion leave the new object cached", async () => {
  const ns = "scope-a";
  const store = new Store<CloudInstance>();
  const scopeA = new Set<string>();
  const scopeB = new Set<string>();
  const events: string[] = [];
  const reflector = (selector: string, scope: Set<string>) =>
    new Reflector<CloudInstance>({
      client: api.client,
      resource: CloudInstanceResource,
      namespace: ns,
      labelSelector: selector,
      store,
      sink: {
        onAdd: (o) => events.push(`${selector} add ${o.metadata.uid ?? ""}`),
        onUpdate: (_old, o) => events.push(`${selector} update ${o.metadata.uid ?? ""}`),
        onDelete: (o) => events.push(`${selector} delete ${o.metadata.uid ?? ""}`),
        onListed: () => undefined,
      },
      logger: silentLogger,
      clock: systemClock,
      backoff: { initialMs: 5, maxMs: 50, resetAfterMs: 120_000 },
      scope: { inScope: (o) => scope.has(o.metadata.uid ?? "") },
    });
  const a = reflector("s=a", scopeA);
  const b = reflector("s=b", scopeB);
  const stopA = new AbortController();
  const stopB = new AbortController();
  const resumed = new AbortController();
  let runA = a.run(stopA.signal);
  const runB = b.run(stopB.signal);
  try {
    const labelled = (s: string) => {
      const o = instance(ns, "x");
      return { ...o, metadata: { ...o.metadata, labels: { s } } };
    };
    const first = await api.client.create(CloudInstanceResource, labelled("a"));
    scopeA.add(first.metadata.uid ?? "");
    await eventually(() => store.getByKey(`${ns}/x`)?.metadata.uid === first.metadata.uid, "x cached by a");

    // a falls behind: it stops, and resumes later from where it was.
    stopA.abort();
    await runA;
    await api.client.patch(CloudInstanceResource, ns, "x", { metadata: { annotations: { late: "1" } } });
    await api.client.delete(CloudInstanceResource, ns, "x");
    const second = await api.client.create(CloudInstanceResource, labelled("b"));
    scopeB.add(second.metadata.uid ?? "");
    await eventually(
      () => store.getByKey(`${ns}/x`)?.metadata.uid === second.metadata.uid,
      "the new x cached by b",
    );

    runA = a.run(resumed.signal);
    // a replays the old x's update and deletion after the new x is cached: both are ignored.
    await eventually(
      () =>
        a.resourceVersion !== undefined &&
        BigInt(a.resourceVersion) >= BigInt(second.metadata.resourceVersion ?? "0"),
      "a caught up",
      10_000,
    );
    assert.equal(store.getByKey(`${ns}/x`)?.metadata.uid, second.metadata.uid, "the new x stays cached");
    assert.ok(
      !events.some((e) => e.startsWith("s=a") && e.includes(second.metadata.uid ?? "-")),
      "a never touched the new x",
    );
    assert.ok(
      !events.includes(`s=a delete ${first.metadata.uid ?? ""}`),
      "its late deletion removed nothing",
    );
  } finally {
    stopA.abort();
    resumed.abort();
    stopB.abort();
    await Promise.all([runA, runB]);
  }
});
