/**
 * The CloudInstance lifecycle on every provider besides m2s (which has its own, longer file),
 * end to end: the real operator, the in-memory API server and each provider's simulator.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startWorld, eventually, CloudInstanceResource, InstanceTemplateResource } from "./harness.ts";
import { cond, ready } from "./harness.ts";
import { PROVIDER_NAMES, type CloudInstance, type ProviderName } from "../../src/api/index.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { EventResource } from "../../src/kube/resources.ts";
import { SIMULATORS } from "../sim/all.ts";
import type { MosSimulator } from "../sim/mos/index.ts";
import type { MulticloudSimulator } from "../sim/multicloud/index.ts";
import type { ZomroSimulator } from "../sim/zomro/index.ts";

type World = Awaited<ReturnType<typeof startWorld>>;
let w: World;
/** Every registered provider but m2s (test/e2e/m2s-lifecycle.test.ts). */
const PROVIDERS = PROVIDER_NAMES.filter((p) => p !== "m2s");

const sim = (p: ProviderName) => {
  const s = w.sims.get(p);
  assert.ok(s);
  return s;
};
const vmsOf = (p: ProviderName, o: CloudInstance) =>
  sim(p)
    .vms()
    .filter((v) => v.ownerUID === o.metadata.uid);

before(async () => {
  w = await startWorld({ providers: PROVIDERS });
  await w.startOperator();
});
after(async () => {
  await w.close();
});

for (const provider of PROVIDERS) {
  const kit = SIMULATORS[provider];
  describe(`CloudInstance lifecycle on ${provider}`, () => {
    test(`create -> Running${kit.canStop ? " -> stop -> start" : ""}${kit.resizeTo ? " -> resize" : ""} -> delete, one VM throughout`, async () => {
      const name = `${provider}-life`;
      await w.instanceOn(provider, name);
      let o = await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Running", "Running and Ready");
      assert.ok(o.status?.instanceID);
      assert.equal(vmsOf(provider, o).length, 1);
      if (kit.canStop) {
        await w.kube.patch(CloudInstanceResource, "e2e", name, { spec: { powerState: "Stopped" } });
        await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Stopped", "Stopped");
        await w.kube.patch(CloudInstanceResource, "e2e", name, { spec: { powerState: "Running" } });
        await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Running", "Running again");
      }
      if (kit.resizeTo) {
        await w.kube.patch(CloudInstanceResource, "e2e", name, { spec: { plan: kit.resizeTo } });
        o = await w.waitFor(
          name,
          (x) => ready(x) && x.status?.plan === kit.resizeTo,
          `resized to ${kit.resizeTo}`,
        );
        assert.equal(vmsOf(provider, o)[0]?.plan, kit.resizeTo);
      }
      assert.equal(vmsOf(provider, o).length, 1, "still exactly one VM");
      await w.kube.delete(CloudInstanceResource, "e2e", name);
      await w.gone(name);
      await eventually(() => Promise.resolve(vmsOf(provider, o).length === 0), `${provider} VM gone`);
    });
  });
}

describe("provider rules surface as conditions, without loops", () => {
  test("vscale: a downgrade is refused with DowngradeRefused and never sent", async () => {
    const upgrades = () => sim("vscale").requestCounts.get("POST /v1/scalets/:id/upgrade") ?? 0;
    await w.instanceOn("vscale", "vs-down", { plan: "large" });
    await w.waitFor("vs-down", ready, "Ready");
    const upgradesBefore = upgrades();
    await w.kube.patch(CloudInstanceResource, "e2e", "vs-down", { spec: { plan: "small" } });
    const o = await w.waitFor(
      "vs-down",
      (x) => cond(x, "Synced")?.reason === "DowngradeRefused",
      "DowngradeRefused",
    );
    assert.match(cond(o, "Synced")?.message ?? "", /only upgrades/);
    const gets = () => sim("vscale").requestCounts.get("GET /v1/scalets/:id") ?? 0;
    const before = gets();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(upgrades(), upgradesBefore, "the downgrade never reached Vscale");
    assert.ok(gets() - before < 10, `no busy loop: ${String(gets() - before)} reads in 1.5 s`);
  });

  test("mos: a short balance ends with Synced=False, MOS's message, an Event and no VM", async () => {
    const mos = sim("mos") as MosSimulator;
    const balance = mos.balance;
    mos.balance = 0;
    try {
      await w.instanceOn("mos", "mos-poor");
      const o = await w.waitFor(
        "mos-poor",
        (x) => /No enough balance/.test(cond(x, "Synced")?.message ?? ""),
        "billing",
      );
      assert.equal(cond(o, "Synced")?.reason, "QuotaOrBilling");
      assert.equal(vmsOf("mos", o).length, 0);
      await eventually(async () => {
        const events = await w.kube.list(EventResource, { namespace: "e2e" });
        return events.items.some(
          (e) => e.involvedObject.name === "mos-poor" && /No enough balance/.test(e.message ?? ""),
        );
      }, "an Event with the provider's message");
    } finally {
      mos.balance = balance;
    }
  });

  test("zomro: an expired session is renewed without the object noticing", async () => {
    await w.instanceOn("zomro", "zo-session");
    await w.waitFor("zo-session", ready, "Ready");
    (sim("zomro") as ZomroSimulator).expireSessions();
    await w.kube.patch(CloudInstanceResource, "e2e", "zo-session", { spec: { powerState: "Stopped" } });
    const o = await w.waitFor("zo-session", (x) => ready(x) && x.status?.phase === "Stopped", "Stopped");
    assert.equal(cond(o, "Synced")?.status, "True");
  });

  test("multicloud: a template is mirrored remotely, instances expand it, deletion cleans both; stop is refused", async () => {
    const mc = sim("multicloud") as MulticloudSimulator;
    const kit = SIMULATORS.multicloud.spec;
    await w.kube.create(InstanceTemplateResource, {
      apiVersion: "compute.instance-operator.dev/v1alpha1",
      kind: "InstanceTemplate",
      metadata: { name: "mc-pool", namespace: "e2e" },
      spec: {
        provider: {
          name: "multicloud",
          credentialsSecretRef: { name: "multicloud-creds" },
          endpoint: mc.url,
        },
        region: kit.region,
        plan: kit.plan,
        image: kit.image,
        providerOptions: kit.providerOptions,
      },
    } as never);
    await eventually(
      async () =>
        (await w.kube.get(InstanceTemplateResource, "e2e", "mc-pool")).status?.providerData?.clusterId !==
        undefined,
      "remote template id in the template's status",
    );
    const t = await w.kube.get(InstanceTemplateResource, "e2e", "mc-pool");
    const clusterId = t.status?.providerData?.clusterId;
    await w.kube.create(CloudInstanceResource, {
      apiVersion: "compute.instance-operator.dev/v1alpha1",
      kind: "CloudInstance",
      metadata: { name: "mc-from-pool", namespace: "e2e" },
      spec: { templateRef: { name: "mc-pool" } },
    } as never);
    const o = await w.waitFor("mc-from-pool", ready, "Ready from the mirrored template");
    assert.equal(o.status?.providerData?.privateClusterId, undefined, "expanded the template's twin");
    assert.ok(mc.clusters().some((c) => String(c.id) === clusterId));

    await w.kube.patch(CloudInstanceResource, "e2e", "mc-from-pool", { spec: { powerState: "Stopped" } });
    const refused = await w.waitFor(
      "mc-from-pool",
      (x) => cond(x, "Synced")?.reason === "Unsupported",
      "Unsupported",
    );
    assert.match(cond(refused, "Synced")?.message ?? "", /does not support stop/);

    // A vanished remote template is recreated at the next pass (the drift check).
    mc.dropCluster(Number(clusterId));
    await w.kube.patch(InstanceTemplateResource, "e2e", "mc-pool", {
      metadata: { annotations: { "compute.instance-operator.dev/reconcile-requested-at": "now" } },
    });
    await eventually(async () => {
      const again = await w.kube.get(InstanceTemplateResource, "e2e", "mc-pool");
      const id = again.status?.providerData?.clusterId;
      return id !== undefined && mc.clusters().some((c) => String(c.id) === id);
    }, "remote template recreated");

    await w.kube.delete(CloudInstanceResource, "e2e", "mc-from-pool");
    await w.kube.delete(InstanceTemplateResource, "e2e", "mc-pool");
    await w.gone("mc-from-pool");
    await eventually(async () => {
      try {
        await w.kube.get(InstanceTemplateResource, "e2e", "mc-pool");
        return false;
      } catch (err) {
        return isNotFound(err) && mc.clusters().length === 0;
      }
    }, "template and its remote twin gone");
    assert.equal(mc.vms().filter((v) => v.ownerUID === o.metadata.uid).length, 0);
  });
});
