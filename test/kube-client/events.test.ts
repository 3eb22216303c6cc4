import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { EventRecorder } from "../../src/kube/events.ts";
import { EventResource } from "../../src/kube/resources.ts";
import { startApi, silentLogger } from "./harness.ts";

let api: Awaited<ReturnType<typeof startApi>>;
before(async () => {
  api = await startApi();
});
after(async () => {
  await api.close();
});

const involved = (name: string) => ({
  apiVersion: "compute.instance-operator.dev/v1alpha1",
  kind: "CloudInstance",
  metadata: { namespace: "ev", name, uid: `uid-${name}`, resourceVersion: "7" },
});

test("writes a core/v1 Event describing the object, reason and type", async () => {
  const rec = new EventRecorder({ client: api.client, logger: silentLogger, instance: "op-0" });
  rec.record(involved("vm1"), "Normal", "Created", "created VM i-1 at m2s");
  await rec.flush();
  const events = (await api.client.list(EventResource, { namespace: "ev" })).items;
  const ev = events.find((e) => e.involvedObject.name === "vm1");
  assert.ok(ev);
  assert.equal(ev.reason, "Created");
  assert.equal(ev.type, "Normal");
  assert.equal(ev.message, "created VM i-1 at m2s");
  assert.equal(ev.count, 1);
  assert.equal(ev.involvedObject.kind, "CloudInstance");
  assert.equal(ev.involvedObject.uid, "uid-vm1");
  assert.equal(ev.source?.component, "cloud-instance-operator");
  assert.equal(ev.reportingInstance, "op-0");
});

test("identical events within the window are aggregated into one Event with a count", async () => {
  let now = 1_700_000_000_000;
  const rec = new EventRecorder({
    client: api.client,
    logger: silentLogger,
    now: () => now,
    aggregationWindowMs: 60_000,
  });
  rec.record(involved("vm2"), "Warning", "ProviderError", "HTTP 503 from m2s");
  now += 1000;
  rec.record(involved("vm2"), "Warning", "ProviderError", "HTTP 503 from m2s");
  now += 1000;
  rec.record(involved("vm2"), "Warning", "ProviderError", "HTTP 503 from m2s");
  rec.record(involved("vm2"), "Warning", "ProviderError", "a different message");
  await rec.flush();
  let events = (await api.client.list(EventResource, { namespace: "ev" })).items.filter(
    (e) => e.involvedObject.name === "vm2",
  );
  assert.equal(events.length, 2);
  const same = events.find((e) => e.message === "HTTP 503 from m2s");
  assert.equal(same?.count, 3);
  assert.notEqual(same?.firstTimestamp, same?.lastTimestamp);

  now += 120_000;
  rec.record(involved("vm2"), "Warning", "ProviderError", "HTTP 503 from m2s");
  await rec.flush();
  events = (await api.client.list(EventResource, { namespace: "ev" })).items.filter(
    (e) => e.involvedObject.name === "vm2",
  );
  assert.equal(events.length, 3, "outside the window a new Event starts");
});

test("a failing API server never throws into the caller", async () => {
  const rec = new EventRecorder({ client: api.client, logger: silentLogger });
  api.server.faults.failNext(1, 500);
  assert.doesNotThrow(() => rec.record(involved("vm3"), "Normal", "Started", "started"));
  await rec.flush();
  rec.record(involved("vm3"), "Normal", "Started", "started again");
  await rec.flush();
  const events = (await api.client.list(EventResource, { namespace: "ev" })).items.filter(
    (e) => e.involvedObject.name === "vm3",
  );
  assert.deepEqual(
    events.map((e) => e.message),
    ["started again"],
  );
});

test("under a backlog a Warning is never dropped for Normal events and is written before those waiting", async () => {
  const rec = new EventRecorder({ client: api.client, logger: silentLogger, maxPending: 5 });
  // The first write starts at once, four wait behind it, the last five find no room.
  for (let i = 0; i < 10; i++) rec.record(involved(`busy-${String(i)}`), "Normal", "Created", "created");
  rec.record(involved("busy-failed"), "Warning", "ProviderError", "HTTP 500 from m2s");
  await rec.flush();
  const events = (await api.client.list(EventResource, { namespace: "ev" })).items
    .filter((e) => e.involvedObject.name?.startsWith("busy-"))
    .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
  assert.deepEqual(
    events.map((e) => e.involvedObject.name),
    ["busy-0", "busy-failed", "busy-1", "busy-2", "busy-3", "busy-4"],
  );
});
