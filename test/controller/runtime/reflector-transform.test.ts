// The cache transform applies to every object the reflector admits, first list page included
// (review A1: the first page used to skip it), through the real Reflector over HTTP.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Reflector } from "../../../src/controller/runtime/reflector.ts";
import { Store } from "../../../src/controller/runtime/store.ts";
import { stripUnread } from "../../../src/controller/runtime/predicates.ts";
import { CloudInstanceResource } from "../../../src/kube/resources.ts";
import type { CloudInstance } from "../../../src/api/index.ts";
import { systemClock } from "../../../src/util/clock.ts";
import { eventually, silentLogger, startApi } from "../../kube-client/harness.ts";
import { instance } from "../../kube-client/objects.ts";

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";
let api: Awaited<ReturnType<typeof startApi>>;

before(async () => {
  api = await startApi();
  for (const name of ["one", "two", "three"]) {
    const o = instance("transform", name);
    o.metadata.annotations = { [LAST_APPLIED]: '{"big":"copy"}', kept: "yes" };
    o.metadata.managedFields = [{ manager: "kubectl", operation: "Apply", fieldsType: "FieldsV1" }];
    const created = await api.client.create(CloudInstanceResource, o);
    assert.ok(created.metadata.managedFields, "precondition: the server keeps managedFields");
  }
});
after(async () => {
  await api.close();
});

for (const pageSize of [500, 2, 1]) {
  test(`every cached object is transformed, whatever page it came on (page size ${String(pageSize)})`, async () => {
    const store = new Store<CloudInstance>();
    const ac = new AbortController();
    const reflector = new Reflector<CloudInstance>({
      client: api.client,
      resource: CloudInstanceResource,
      namespace: "transform",
      store,
      sink: {
        onAdd: () => undefined,
        onUpdate: () => undefined,
        onDelete: () => undefined,
        onListed: () => undefined,
      },
      logger: silentLogger,
      clock: systemClock,
      pageSize,
      transform: stripUnread,
    });
    const run = reflector.run(ac.signal);
    await eventually(() => reflector.hasSynced, "synced");
    const cached = store.list();
    assert.equal(cached.length, 3);
    for (const o of cached) {
      assert.equal(o.metadata.managedFields, undefined, `${o.metadata.name ?? ""} kept managedFields`);
      assert.deepEqual(o.metadata.annotations, { kept: "yes" }, `${o.metadata.name ?? ""} kept last-applied`);
    }
    // A watch event goes through the same transform.
    const four = instance("transform", "four");
    four.metadata.managedFields = [{ manager: "kubectl", operation: "Apply" }];
    await api.client.create(CloudInstanceResource, four);
    await eventually(() => store.list().length === 4, "watch event cached");
    assert.ok(store.list().every((o) => o.metadata.managedFields === undefined));
    await api.client.delete(CloudInstanceResource, "transform", "four");
    await eventually(() => store.list().length === 3, "deletion seen");
    ac.abort();
    await run;
  });
}
