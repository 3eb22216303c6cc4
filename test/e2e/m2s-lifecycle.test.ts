import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  startWorld,
  eventually,
  CloudInstanceResource,
  InstanceTemplateResource,
  type Operator,
} from "./harness.ts";
import { cond, ready } from "./harness.ts";
import { EventResource, SecretResource } from "../../src/kube/resources.ts";
import { credentialsSecret } from "../sim/all.ts";
import { vmName } from "../../src/providers/m2s/index.ts";
import { ANNOTATION_EXTERNAL_ID, ANNOTATION_PAUSED, type CloudInstance } from "../../src/api/index.ts";
import { isNotFound } from "../../src/kube/errors.ts";

type World = Awaited<ReturnType<typeof startWorld>>;
let w: World;
let op: Operator;

const vmsOf = (o: CloudInstance) => w.m2s.vms().filter((v) => v.ownerUID === o.metadata.uid);

before(async () => {
  w = await startWorld();
  op = await w.startOperator();
});
after(async () => {
  await w.close();
});

describe("CloudInstance lifecycle on m2s, end to end over HTTP", () => {
  test("create -> Running -> stop -> start -> resize -> delete", async () => {
    await w.instance("life");
    let o = await w.waitFor("life", ready, "Ready");
    assert.equal(o.status?.phase, "Running");
    assert.match(o.status?.instanceID ?? "", /^i-/);
    assert.ok((o.status?.addresses?.public?.length ?? 0) > 0);
    assert.deepEqual(o.metadata.finalizers, ["compute.instance-operator.dev/finalizer"]);
    assert.equal(vmsOf(o).length, 1);

    await w.kube.patch(CloudInstanceResource, "e2e", "life", { spec: { powerState: "Stopped" } });
    o = await w.waitFor("life", (x) => x.status?.phase === "Stopped" && ready(x), "Stopped and Ready");
    assert.equal(cond(o, "Running")?.status, "False");

    await w.kube.patch(CloudInstanceResource, "e2e", "life", {
      spec: { powerState: "Running", plan: "performance" },
    });
    o = await w.waitFor(
      "life",
      (x) => x.status?.plan === "performance" && x.status.phase === "Running" && ready(x),
      "resized and running",
    );
    assert.equal(o.status?.observedGeneration, o.metadata.generation);

    await w.kube.delete(CloudInstanceResource, "e2e", "life");
    await w.gone("life");
    assert.equal(vmsOf(o).length, 0, "the VM is deleted at the provider before the finalizer goes");
  });

  test("a missing Secret is reported, and the instance converges once the Secret appears (watch-mapped)", async () => {
    await w.instance("nosecret", {
      provider: { name: "m2s", credentialsSecretRef: { name: "later" }, endpoint: w.m2s.url },
    });
    const o = await w.waitFor(
      "nosecret",
      (x) => cond(x, "Synced")?.reason === "SecretNotFound",
      "SecretNotFound",
    );
    assert.match(cond(o, "Synced")?.message ?? "", /Secret "e2e\/later" not found/);
    assert.equal(vmsOf(o).length, 0);
    await w.kube.create(
      SecretResource,
      credentialsSecret({ name: "later", namespace: "e2e" }, w.m2s.credentials) as never,
    );
    await w.waitFor("nosecret", ready, "Ready after the Secret appeared");
  });

  test("an unknown plan ends with Synced=False and no VM", async () => {
    await w.instance("badplan", { plan: "gigantic" });
    const o = await w.waitFor("badplan", (x) => cond(x, "Synced")?.reason === "UnknownPlan", "UnknownPlan");
    assert.match(cond(o, "Synced")?.message ?? "", /starter, business/);
    assert.equal(vmsOf(o).length, 0);
  });

  test("providerOptions the driver rejects end with InvalidProviderOptions and no VM", async () => {
    await w.instance("badopts", { providerOptions: { backupEnabled: "yes" } });
    const o = await w.waitFor(
      "badopts",
      (x) => cond(x, "Synced")?.reason === "InvalidProviderOptions",
      "InvalidProviderOptions",
    );
    assert.match(cond(o, "Synced")?.message ?? "", /m2s: providerOptions\.backupEnabled/);
    assert.equal(vmsOf(o).length, 0);
  });

  test("image change with updatePolicy Safe -> RebuildRequired; AllowRebuild rebuilds", async () => {
    await w.instance("img");
    await w.waitFor("img", ready, "Ready");
    await w.kube.patch(CloudInstanceResource, "e2e", "img", { spec: { image: "debian-12" } });
    await w.waitFor("img", (x) => cond(x, "Synced")?.reason === "RebuildRequired", "RebuildRequired");
    await w.kube.patch(CloudInstanceResource, "e2e", "img", { spec: { updatePolicy: "AllowRebuild" } });
    await w.waitFor("img", (x) => x.status?.image === "debian-12" && ready(x), "rebuilt");
  });

  test("drift: a VM stopped and resized outside Kubernetes is brought back", async () => {
    const o = await w.instance("drift");
    const r = await w.waitFor("drift", ready, "Ready");
    w.m2s.mutate(r.status!.instanceID!, { status: "stopped", plan: "starter" });
    await w.waitFor(
      "drift",
      (x) => x.status?.plan === "business" && x.status.phase === "Running" && ready(x),
      "drift corrected",
    );
    assert.equal(vmsOf(o).length, 1);
  });

  test("a VM deleted outside Kubernetes is recreated", async () => {
    await w.instance("vanish");
    const r = await w.waitFor("vanish", ready, "Ready");
    w.m2s.destroy(r.status!.instanceID!);
    const o = await w.waitFor(
      "vanish",
      (x) => ready(x) && x.status?.instanceID !== r.status!.instanceID,
      "recreated",
    );
    assert.deepEqual(
      vmsOf(o).map((v) => v.id),
      [o.status?.instanceID],
      `old ${r.status!.instanceID!}; events: ${JSON.stringify(
        w.api.server
          .objects("events")
          .filter((e) => (e.involvedObject as { name?: string }).name === "vanish")
          .map((e) => `${String(e.reason)}: ${String(e.message)} x${String(e.count)}`),
      )}`,
    );
  });

  test("paused: no provider calls, Synced=False Paused", async () => {
    const o = await w.instance("paused", {}, { [ANNOTATION_PAUSED]: "true" });
    const p = await w.waitFor("paused", (x) => cond(x, "Synced")?.reason === "Paused", "Paused");
    assert.equal(p.status?.instanceID, undefined);
    assert.equal(vmsOf(o).length, 0);
    await w.kube.patch(CloudInstanceResource, "e2e", "paused", {
      metadata: { annotations: { [ANNOTATION_PAUSED]: null } },
    });
    await w.waitFor("paused", ready, "Ready once unpaused");
  });

  test("orphan: deletionPolicy Orphan keeps the VM", async () => {
    const o = await w.instance("orphan", { deletionPolicy: "Orphan" });
    await w.waitFor("orphan", ready, "Ready");
    await w.kube.delete(CloudInstanceResource, "e2e", "orphan");
    await w.gone("orphan");
    assert.equal(vmsOf(o).length, 1);
  });

  /** A VM made at the provider outside Kubernetes, without any ownership mark. */
  async function unmanagedVm(name: string): Promise<string> {
    const res = await fetch(`${w.m2s.url}/instances`, {
      method: "POST",
      headers: { authorization: `Bearer ${w.m2s.credentials.apiKey!}`, "content-type": "application/json" },
      body: JSON.stringify({
        name,
        plan: "business",
        region: "fr-par-1",
        image: "ubuntu-22.04",
        tags: ["e2e"],
      }),
    });
    assert.equal(res.status, 201);
    return ((await res.json()) as { data: { id: string } }).data.id;
  }

  test("adopt: the external-id annotation manages an existing VM instead of creating one, and marks it", async () => {
    const id = await unmanagedVm("made-by-hand");
    const before = w.m2s.vms().length;
    await w.instance("adopt", { deletionPolicy: "Orphan" }, { [ANNOTATION_EXTERNAL_ID]: id });
    const o = await w.waitFor("adopt", ready, "Ready");
    assert.equal(o.status?.instanceID, id);
    assert.equal(w.m2s.vms().length, before, "nothing created");
    await eventually(
      () => Promise.resolve(w.m2s.vms().find((v) => v.id === id)?.ownerUID === o.metadata.uid),
      "the adopted VM carries the object's ownership mark",
    );
  });

  test("adopt: a VM marked as another object's is refused, untouched, and survives the object's deletion", async () => {
    await w.instance("victim");
    const victim = await w.waitFor("victim", ready, "Ready");
    const id = victim.status?.instanceID;
    assert.ok(id);
    await w.instance("thief", { powerState: "Stopped" }, { [ANNOTATION_EXTERNAL_ID]: id });
    const o = await w.waitFor(
      "thief",
      (x) => cond(x, "Synced")?.reason === "AdoptionRefused",
      "AdoptionRefused",
    );
    assert.match(cond(o, "Synced")?.message ?? "", /force-adopt/);
    assert.equal(o.status?.addresses, undefined, "nothing of the victim's VM in the thief's status");
    await w.kube.delete(CloudInstanceResource, "e2e", "thief");
    await w.gone("thief");
    const vm = w.m2s.vms().find((v) => v.id === id);
    assert.equal(vm?.status, "running", "the victim's VM was neither stopped nor deleted");
    assert.equal(vm.ownerUID, victim.metadata.uid);
    await w.kube.delete(CloudInstanceResource, "e2e", "victim");
    await w.gone("victim");
  });

  test("operator restarted after a provider create but before the status write: still exactly one VM", async () => {
    await op.stop();
    // What a crash leaves behind: the finalizer (stored before any provider call), the VM at the
    // provider tagged with the UID, and no id in status.
    await w.instance("crash");
    const o = await w.kube.patch(CloudInstanceResource, "e2e", "crash", {
      metadata: { finalizers: ["compute.instance-operator.dev/finalizer"] },
    });
    const res = await fetch(`${w.m2s.url}/instances`, {
      method: "POST",
      headers: { authorization: `Bearer ${w.m2s.credentials.apiKey!}`, "content-type": "application/json" },
      body: JSON.stringify({
        name: vmName({ namespace: "e2e", name: "crash", ownerUID: o.metadata.uid! }),
        plan: "business",
        region: "fr-par-1",
        image: "ubuntu-22.04",
        tags: ["e2e", `cio-owner:${o.metadata.uid!}`],
      }),
    });
    assert.equal(res.status, 201);
    op = await w.startOperator();
    await w.waitFor("crash", ready, "Ready");
    assert.equal(vmsOf(o).length, 1);
  });

  test("template propagation and replicas 0 -> 3 -> 1", async () => {
    await w.kube.create(InstanceTemplateResource, {
      apiVersion: "compute.instance-operator.dev/v1alpha1",
      kind: "InstanceTemplate",
      metadata: { name: "web", namespace: "e2e" },
      spec: {
        provider: { name: "m2s", credentialsSecretRef: { name: "m2s-creds" }, endpoint: w.m2s.url },
        region: "fr-par-1",
        plan: "starter",
        image: "ubuntu-22.04",
        replicas: 3,
      },
    });
    await eventually(async () => {
      const t = await w.kube.get(InstanceTemplateResource, "e2e", "web");
      return t.status?.readyReplicas === 3;
    }, "3 ready replicas");
    await w.kube.patch(InstanceTemplateResource, "e2e", "web", { spec: { plan: "business" } });
    await eventually(async () => {
      const all = await Promise.all(["web-0", "web-1", "web-2"].map((n) => w.get(n)));
      return all.every((i) => i.status?.plan === "business" && ready(i));
    }, "plan propagated to every replica");
    await w.kube.patch(InstanceTemplateResource, "e2e", "web", { spec: { replicas: 1 } });
    await w.gone("web-2");
    await w.gone("web-1");
    const t = await w.kube.get(InstanceTemplateResource, "e2e", "web");
    assert.equal(t.spec.replicas, 1);
    await eventually(
      async () => (await w.kube.get(InstanceTemplateResource, "e2e", "web")).status?.replicas === 1,
      "status.replicas 1",
    );
  });

  test("a missing template is reported with an Event; a referenced template cannot vanish", async () => {
    await w.instance("from-tpl", { templateRef: { name: "base" }, plan: undefined });
    const waiting = await w.waitFor(
      "from-tpl",
      (o) => cond(o, "Synced")?.reason === "TemplateNotFound",
      "TemplateNotFound",
    );
    assert.match(cond(waiting, "Synced")?.message ?? "", /base/);
    await eventually(async () => {
      const events = await w.kube.list(EventResource, { namespace: "e2e" });
      return events.items.some(
        (e) => e.involvedObject.name === "from-tpl" && e.reason === "TemplateNotFound",
      );
    }, "a TemplateNotFound Event");
    assert.equal(vmsOf(waiting).length, 0);

    // The template appears: the instance converges without being touched (watch-mapped).
    await w.kube.create(InstanceTemplateResource, {
      apiVersion: "compute.instance-operator.dev/v1alpha1",
      kind: "InstanceTemplate",
      metadata: { name: "base", namespace: "e2e" },
      spec: {
        provider: { name: "m2s", credentialsSecretRef: { name: "m2s-creds" }, endpoint: w.m2s.url },
        region: "fr-par-1",
        plan: "starter",
        image: "ubuntu-22.04",
      },
    });
    const running = await w.waitFor("from-tpl", ready, "Ready from the template");
    assert.equal(running.status?.plan, "starter");

    // Deleting the template while an instance uses it: it stays, says why, and goes with the instance.
    await w.kube.delete(InstanceTemplateResource, "e2e", "base");
    await eventually(async () => {
      const t = await w.kube.get(InstanceTemplateResource, "e2e", "base");
      const r = t.status?.conditions?.find((c) => c.type === "Ready");
      return (
        t.metadata.deletionTimestamp !== undefined && r?.reason === "InUse" && /from-tpl/.test(r.message)
      );
    }, "template held with Ready=False InUse");
    assert.ok(ready(await w.get("from-tpl")), "the instance is unaffected");
    await w.kube.delete(CloudInstanceResource, "e2e", "from-tpl");
    await w.gone("from-tpl");
    await eventually(async () => {
      try {
        await w.kube.get(InstanceTemplateResource, "e2e", "base");
        return false;
      } catch (err) {
        return isNotFound(err);
      }
    }, "template deleted once unused");
  });

  test("a no-op reconcile makes zero API writes", async () => {
    await w.instance("quiet");
    await w.waitFor("quiet", ready, "Ready");
    // Let in-flight polls settle, then count writes across several resyncs (resync is 1 s here).
    await new Promise((r) => setTimeout(r, 500));
    const before = w.api.server.requestCounts().byVerb;
    const beforeByResource = w.api.server.requestCounts().byResource;
    const writes = (c: Record<string, number>) =>
      (c.update ?? 0) + (c.patch ?? 0) + (c.create ?? 0) + (c.delete ?? 0);
    const w0 = writes(before);
    await new Promise((r) => setTimeout(r, 2500));
    const after = w.api.server.requestCounts();
    const quietWrites = writes(after.byVerb) - w0;
    const changed = Object.entries(after.byResource).filter(
      ([k, v]) =>
        !k.startsWith("get") &&
        !k.startsWith("list") &&
        !k.startsWith("watch") &&
        v !== (beforeByResource[k] ?? 0),
    );
    // Events count as creates; ready objects on resync create none. Other tests' objects are settled too.
    assert.equal(quietWrites, 0, `writes during quiet resyncs: ${JSON.stringify(changed)}`);
  });
});
