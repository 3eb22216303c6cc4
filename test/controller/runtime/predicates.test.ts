import { test } from "node:test";
import assert from "node:assert/strict";
import { specOrMetadataChanged, stripUnread } from "../../../src/controller/runtime/predicates.ts";
import type { KubeObject } from "../../../src/kube/object.ts";

const obj = (meta: Partial<KubeObject["metadata"]>, status: unknown = {}): KubeObject =>
  ({
    metadata: { name: "a", namespace: "n", generation: 1, resourceVersion: "1", ...meta },
    status,
  }) as KubeObject;
const withoutGeneration = (): KubeObject => ({
  metadata: { name: "a", namespace: "n", resourceVersion: "1" },
});

test("status-only and finalizer-only updates (the reconciler's own writes) are skipped", () => {
  assert.equal(specOrMetadataChanged(obj({}), obj({ resourceVersion: "2" }, { phase: "Running" })), false);
  assert.equal(specOrMetadataChanged(obj({}), obj({ finalizers: ["f"], resourceVersion: "2" })), false);
});

test("spec, deletion, annotations and labels changes are reconciled", () => {
  assert.equal(specOrMetadataChanged(obj({}), obj({ generation: 2 })), true);
  assert.equal(specOrMetadataChanged(obj({}), obj({ deletionTimestamp: "2026-01-01T00:00:00Z" })), true);
  assert.equal(specOrMetadataChanged(obj({}), obj({ annotations: { paused: "true" } })), true);
  assert.equal(specOrMetadataChanged(obj({}), obj({ labels: { a: "b" } })), true);
  assert.equal(
    specOrMetadataChanged(withoutGeneration(), withoutGeneration()),
    true,
    "kinds without generation",
  );
});

test("cached objects lose managedFields and kubectl's last-applied copy, nothing else", () => {
  const o = obj({
    managedFields: [{ manager: "kubectl" }],
    annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{…}", keep: "me" },
  });
  const s = stripUnread(o);
  assert.equal((s.metadata as { managedFields?: unknown }).managedFields, undefined);
  assert.deepEqual(s.metadata.annotations, { keep: "me" });
  assert.equal(s.metadata.name, "a");
  const plain = obj({});
  assert.equal(stripUnread(plain), plain, "untouched objects are not copied");
});
