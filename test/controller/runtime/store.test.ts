import { test } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../../../src/controller/runtime/store.ts";
import type { AnyObject } from "../../../src/kube/object.ts";

interface Obj extends AnyObject {
  spec?: { templateRef?: string };
}

function obj(ns: string, name: string, rv: string, template?: string): Obj {
  return {
    metadata: { namespace: ns, name, resourceVersion: rv },
    ...(template ? { spec: { templateRef: template } } : {}),
  };
}

const byTemplate = (o: Obj): string[] =>
  o.spec?.templateRef ? [`${o.metadata.namespace ?? ""}/${o.spec.templateRef}`] : [];

test("stores by namespace/name and lists by namespace", () => {
  const s = new Store<Obj>();
  s.upsert(obj("a", "x", "1"));
  s.upsert(obj("b", "x", "2"));
  assert.equal(s.get("a", "x")?.metadata.resourceVersion, "1");
  assert.equal(s.getByKey("b/x")?.metadata.resourceVersion, "2");
  assert.equal(s.list("a").length, 1);
  assert.equal(s.list().length, 2);
});

test("custom indexes follow updates and deletes", () => {
  const s = new Store<Obj>({ byTemplate });
  s.upsert(obj("ns", "i1", "1", "small"));
  s.upsert(obj("ns", "i2", "1", "small"));
  s.upsert(obj("other", "i3", "1", "small"));
  assert.deepEqual(
    s
      .byIndex("byTemplate", "ns/small")
      .map((o) => o.metadata.name)
      .sort(),
    ["i1", "i2"],
  );
  s.upsert(obj("ns", "i2", "2", "large"));
  assert.deepEqual(
    s.byIndex("byTemplate", "ns/small").map((o) => o.metadata.name),
    ["i1"],
  );
  assert.deepEqual(
    s.byIndex("byTemplate", "ns/large").map((o) => o.metadata.name),
    ["i2"],
  );
  s.delete("ns/i1");
  assert.deepEqual(s.byIndex("byTemplate", "ns/small"), []);
  assert.throws(() => s.byIndex("nope", "x"), /unknown index/);
});

test("an index added later covers existing objects", () => {
  const s = new Store<Obj>();
  s.upsert(obj("ns", "i1", "1", "t"));
  s.addIndexers({ byTemplate });
  assert.equal(s.byIndex("byTemplate", "ns/t").length, 1);
  assert.throws(() => {
    s.addIndexers({ byTemplate });
  }, /already exists/);
});

test("replace reports adds, real updates and deletes within its scope only", () => {
  const s = new Store<Obj>();
  s.upsert(obj("a", "keep", "1"));
  s.upsert(obj("a", "changed", "1"));
  s.upsert(obj("a", "gone", "1"));
  s.upsert(obj("b", "other-scope", "1"));
  const diff = s.replace(
    [obj("a", "keep", "1"), obj("a", "changed", "2"), obj("a", "new", "1")],
    (o) => o.metadata.namespace === "a",
  );
  assert.deepEqual(
    diff.added.map((o) => o.metadata.name),
    ["new"],
  );
  assert.deepEqual(
    diff.updated.map((u) => [u.old.metadata.resourceVersion, u.obj.metadata.resourceVersion]),
    [["1", "2"]],
  );
  assert.deepEqual(
    diff.deleted.map((o) => o.metadata.name),
    ["gone"],
  );
  assert.ok(s.get("b", "other-scope"), "another namespace's objects are untouched");
  assert.equal(s.size, 4);
});

test("an update under the same index values returns the new object; an update to none unfiles it", () => {
  const s = new Store<Obj>({ byTemplate });
  s.upsert(obj("ns", "i1", "1", "small"));
  s.upsert(obj("ns", "i1", "2", "small"));
  assert.deepEqual(
    s.byIndex("byTemplate", "ns/small").map((o) => o.metadata.resourceVersion),
    ["2"],
  );
  s.upsert(obj("ns", "i1", "3"));
  assert.deepEqual(s.byIndex("byTemplate", "ns/small"), []);
  s.upsert(obj("ns", "i1", "4", "small"));
  s.delete("ns/i1");
  assert.deepEqual(s.byIndex("byTemplate", "ns/small"), []);
});
