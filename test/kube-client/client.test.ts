import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  AlreadyExistsError,
  ConflictError,
  GoneError,
  InvalidError,
  NotFoundError,
  ServerError,
} from "../../src/kube/errors.ts";
import { CloudInstanceResource, SecretResource } from "../../src/kube/resources.ts";
import type { WatchEvent } from "../../src/kube/client.ts";
import type { CloudInstance } from "../../src/api/index.ts";
import { startApi } from "./harness.ts";
import { instance, secret } from "./objects.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi();
});
after(async () => {
  await api.close();
});
const c = () => api.client;

test("create, get, update with optimistic concurrency, delete", async () => {
  const created = await c().create(CloudInstanceResource, instance("default", "crud"));
  assert.ok(created.metadata.uid);
  assert.ok(created.metadata.resourceVersion);
  const got = await c().get(CloudInstanceResource, "default", "crud");
  assert.equal(got.metadata.uid, created.metadata.uid);

  const updated = await c().update(CloudInstanceResource, {
    ...got,
    metadata: { ...got.metadata, labels: { a: "1" } },
  });
  assert.equal(updated.metadata.labels?.["a"], "1");
  await assert.rejects(
    c().update(CloudInstanceResource, { ...got, metadata: { ...got.metadata, labels: { a: "2" } } }),
    (err: unknown) => err instanceof ConflictError && err.code === "ERR_KUBE_CONFLICT",
  );
  await assert.rejects(c().create(CloudInstanceResource, instance("default", "crud")), AlreadyExistsError);

  await c().delete(CloudInstanceResource, "default", "crud");
  await assert.rejects(c().get(CloudInstanceResource, "default", "crud"), NotFoundError);
});

test("merge patch, json patch and the status subresource", async () => {
  await c().create(CloudInstanceResource, instance("default", "patchy"));
  const merged = await c().patch(CloudInstanceResource, "default", "patchy", {
    metadata: { annotations: { note: "x" } },
  });
  assert.equal(merged.metadata.annotations?.["note"], "x");
  const jsonPatched = await c().patch(
    CloudInstanceResource,
    "default",
    "patchy",
    [{ op: "add", path: "/metadata/labels", value: { tier: "web" } }],
    "json",
  );
  assert.equal(jsonPatched.metadata.labels?.["tier"], "web");

  const withStatus = await c().updateStatus(CloudInstanceResource, {
    ...jsonPatched,
    status: { phase: "Pending" },
  });
  assert.equal(withStatus.status?.phase, "Pending");
  const patchedStatus = await c().patchStatus(CloudInstanceResource, "default", "patchy", {
    status: { instanceID: "i-1" },
  });
  assert.equal(patchedStatus.status?.instanceID, "i-1");
  assert.equal(patchedStatus.status?.phase, "Pending");

  // patchUnread: applied, nothing to return; a failure is still the server's typed error.
  await c().patchUnread(CloudInstanceResource, "default", "patchy", { metadata: { labels: { tier: "db" } } });
  assert.equal((await c().get(CloudInstanceResource, "default", "patchy")).metadata.labels?.["tier"], "db");
  await assert.rejects(
    c().patchUnread(CloudInstanceResource, "default", "nobody", { metadata: { labels: { tier: "db" } } }),
    NotFoundError,
  );

  // createUnread (Events): stored, its answer not parsed; a name taken is still the server's typed error.
  await c().createUnread(CloudInstanceResource, instance("default", "unread-create"));
  assert.equal(
    (await c().get(CloudInstanceResource, "default", "unread-create")).metadata.name,
    "unread-create",
  );
  await assert.rejects(
    c().createUnread(CloudInstanceResource, instance("default", "unread-create")),
    AlreadyExistsError,
  );
});

test("an invalid object is an InvalidError with causes", async () => {
  const bad = instance("default", "bad");
  (bad.spec as unknown as Record<string, unknown>)["powerState"] = "Sideways";
  await assert.rejects(c().create(CloudInstanceResource, bad), (err: unknown) => err instanceof InvalidError);
});

test("list paginates with limit/continue and filters by label selector", async () => {
  for (let i = 0; i < 7; i++)
    await c().create(CloudInstanceResource, instance("pages", `p${i}`, { batch: i % 2 ? "odd" : "even" }));
  const first = await c().list(CloudInstanceResource, { namespace: "pages", limit: 3 });
  assert.equal(first.items.length, 3);
  assert.ok(first.continue, "has a continue token");
  const all = await c().listAll(CloudInstanceResource, { namespace: "pages", limit: 3 });
  assert.deepEqual(all.items.map((i) => i.metadata.name).sort(), ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
  assert.ok(all.resourceVersion);
  const odd = await c().listAll(CloudInstanceResource, { namespace: "pages", labelSelector: "batch=odd" });
  assert.deepEqual(odd.items.map((i) => i.metadata.name).sort(), ["p1", "p3", "p5"]);
});

test("idempotent requests are retried on 500 and 429; a create is not retried on 500", async () => {
  await c().create(SecretResource, secret("default", "retry-me", { token: "t" }));
  api.server.faults.failNext(2, 500);
  const s = await c().get(SecretResource, "default", "retry-me");
  assert.equal(s.metadata.name, "retry-me");
  api.server.faults.failNext(2, 429);
  const list = await c().list(SecretResource, { namespace: "default" });
  assert.ok(list.items.length >= 1);
  api.server.faults.failNext(1, 500);
  await assert.rejects(c().create(SecretResource, secret("default", "once", { token: "t" })), ServerError);
  api.server.faults.failNext(1, 429);
  const created = await c().create(SecretResource, secret("default", "after-429", { token: "t" }));
  assert.equal(created.metadata.name, "after-429");
});

test("watch streams changes from a resourceVersion and stops on abort", async () => {
  const start = await c().list(CloudInstanceResource, { namespace: "watched" });
  const ac = new AbortController();
  const seen: WatchEvent<CloudInstance>[] = [];
  const done = (async () => {
    for await (const ev of c().watch(CloudInstanceResource, {
      namespace: "watched",
      resourceVersion: start.resourceVersion,
      signal: ac.signal,
    })) {
      seen.push(ev);
      if (seen.length === 3) ac.abort();
    }
  })();
  await c().create(CloudInstanceResource, instance("watched", "w1"));
  await c().patch(CloudInstanceResource, "watched", "w1", { metadata: { labels: { x: "y" } } });
  await c().delete(CloudInstanceResource, "watched", "w1");
  await done;
  assert.deepEqual(
    seen.map((e) => e.type),
    ["ADDED", "MODIFIED", "DELETED"],
  );
});

test("watching from an expired resourceVersion raises GoneError", async () => {
  await c().create(CloudInstanceResource, instance("gone", "g1"));
  const rv = (await c().list(CloudInstanceResource, { namespace: "gone" })).resourceVersion;
  await c().create(CloudInstanceResource, instance("gone", "g2"));
  api.server.faults.expireHistory();
  await assert.rejects(
    (async () => {
      for await (const _ of c().watch(CloudInstanceResource, { namespace: "gone", resourceVersion: rv })) {
        // The first thing a stale watch delivers is the 410.
      }
    })(),
    GoneError,
  );
});
