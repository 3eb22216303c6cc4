import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { CloudInstance, CloudInstanceStatus } from "../../src/api/index.ts";
import { ConflictError } from "../../src/kube/errors.ts";
import { CloudInstanceResource } from "../../src/kube/resources.ts";
import { KubeObjectWriter } from "../../src/kube/writer.ts";
import { startApi } from "./harness.ts";
import { instance } from "./objects.ts";

let api: Awaited<ReturnType<typeof startApi>>;
let writer: KubeObjectWriter<CloudInstance, CloudInstanceStatus>;
before(async () => {
  api = await startApi();
  writer = new KubeObjectWriter(api.client, CloudInstanceResource);
});
after(async () => {
  await api.close();
});

test("patchMetadata writes finalizers and annotations, and refuses a stale object", async () => {
  const created = await writer.create(instance("default", "meta"));
  const patched = await writer.patchMetadata(created, {
    finalizers: ["compute.instance-operator.dev/finalizer"],
    annotations: { a: "1" },
  });
  assert.deepEqual(patched.metadata.finalizers, ["compute.instance-operator.dev/finalizer"]);
  assert.equal(patched.metadata.annotations?.["a"], "1");
  const removed = await writer.patchMetadata(patched, { annotations: { a: null } });
  assert.equal(removed.metadata.annotations?.["a"], undefined);
  await assert.rejects(writer.patchMetadata(created, { finalizers: [] }), ConflictError);
});

test("replaceStatus wins over a stale resourceVersion by re-reading", async () => {
  const created = await writer.create(instance("default", "status"));
  await api.client.patch(CloudInstanceResource, "default", "status", {
    metadata: { labels: { moved: "on" } },
  });
  const updated = await writer.replaceStatus(created, { phase: "Provisioning", instanceID: "i-9" });
  assert.equal(updated.status?.instanceID, "i-9");
  assert.equal(updated.metadata.labels?.["moved"], "on", "the fresh object was used");
});

test("writeStatus (the answer not read back) writes status, re-reading past a stale resourceVersion", async () => {
  const created = await writer.create(instance("default", "unread"));
  await api.client.patch(CloudInstanceResource, "default", "unread", {
    metadata: { labels: { moved: "on" } },
  });
  await writer.writeStatus(created, { phase: "Running", instanceID: "i-7" });
  const stored = await api.client.get(CloudInstanceResource, "default", "unread");
  assert.equal(stored.status?.instanceID, "i-7");
  assert.equal(stored.status?.phase, "Running");
  // A failure's answer is still read: the error is the server's, typed.
  await assert.rejects(
    api.client.updateStatusUnread(CloudInstanceResource, { ...created, status: { phase: "Failed" } }),
    ConflictError,
  );
  await writer.delete("default", "unread");
  await assert.rejects(writer.writeStatus(stored, { phase: "Failed" }), /not ?found/i);
});

test("delete resolves for a missing object", async () => {
  await writer.create(instance("default", "bye"));
  await writer.delete("default", "bye");
  await writer.delete("default", "bye");
  await assert.rejects(api.client.get(CloudInstanceResource, "default", "bye"));
});
