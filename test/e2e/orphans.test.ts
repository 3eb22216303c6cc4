/**
 * The orphan sweeper, end to end on every provider whose driver can list VMs with their
 * ownership mark: a VM whose object vanished without deleting it (finalizer removed by hand)
 * is found, reported (metric, Event) and deleted after the grace period; a VM marked by
 * another cluster sharing the account is never touched.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  startWorld,
  eventually,
  outsideKubernetes,
  CloudInstanceResource,
  ready,
  type Operator,
} from "./harness.ts";
import { EventResource } from "../../src/kube/resources.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";
import { DRIVERS } from "../../src/providers/registry.ts";
import { SIMULATORS } from "../sim/all.ts";
import { desiredMachine } from "../providers/harness.ts";
import type { ProviderName } from "../../src/api/index.ts";

let w: Awaited<ReturnType<typeof startWorld>>;
let op: Operator;

before(async () => {
  w = await startWorld({ providers: PROVIDER_NAMES.filter((p) => p !== "m2s") });
  op = await w.startOperator({ orphans: { scanPeriodMs: 400, policy: "Delete", graceMs: 1_500 } });
});
after(async () => {
  await w.close();
});

async function sweepable(provider: ProviderName): Promise<boolean> {
  const sim = w.sims.get(provider);
  assert.ok(sim);
  return outsideKubernetes(provider, sim, (d) => Promise.resolve(d.listOwned !== undefined));
}

describe("orphan sweeper", () => {
  test("a VM without any ownership mark is never reported nor deleted (m2s)", async () => {
    const res = await fetch(`${w.m2s.url}/instances`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${w.m2s.credentials.apiKey ?? ""}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        name: "hand-made",
        plan: "business",
        region: "fr-par-1",
        image: "ubuntu-22.04",
      }),
    });
    assert.equal(res.status, 201);
    const id = ((await res.json()) as { data: { id: string } }).data.id;
    // An account the sweeper scans: one live object on it.
    await w.instanceOn("m2s", "m2s-keeps-account-known");
    await w.waitFor("m2s-keeps-account-known", ready, "Ready");
    await new Promise((r) => setTimeout(r, 2_500));
    assert.ok(
      w.m2s.vms().some((v) => v.id === id),
      "the unmarked VM is still there after several scans",
    );
    const events = await w.kube.list(EventResource, { namespace: "e2e" });
    assert.ok(!events.items.some((e) => (e.message ?? "").includes(id)), "never reported");
    await w.kube.delete(CloudInstanceResource, "e2e", "m2s-keeps-account-known");
    await w.gone("m2s-keeps-account-known");
  });

  for (const provider of PROVIDER_NAMES)
    test(`${provider}: an orphaned VM is reported and deleted after the grace; another cluster's VM is left alone`, async (t) => {
      if (!(await sweepable(provider))) {
        t.skip(`${provider}'s documented API cannot list VMs with their ownership mark`);
        return;
      }
      const sim = w.sims.get(provider);
      assert.ok(sim);
      const kit = SIMULATORS[provider];
      const foreign = await outsideKubernetes(provider, sim, (d) =>
        d.create(
          desiredMachine(kit.spec, DRIVERS[provider].optionsSchema.parse(kit.spec.providerOptions ?? {}), {
            ownerUID: "11111111-2222-3333-4444-555555555555",
            clusterID: "othercluster",
            namespace: "elsewhere",
            name: "theirs",
          }),
        ),
      );
      // What a crash between the provider's create and the id write leaves once its object is
      // gone too: a VM carrying this cluster's mark for an object that no longer exists.
      const leftover = await outsideKubernetes(provider, sim, (d) =>
        d.create(
          desiredMachine(kit.spec, DRIVERS[provider].optionsSchema.parse(kit.spec.providerOptions ?? {}), {
            ownerUID: "99999999-8888-7777-6666-555555555555",
            clusterID: "e2e",
            namespace: "e2e",
            name: "crashed",
          }),
        ),
      );
      const name = `${provider}-orphan`;
      await w.instanceOn(provider, name);
      const o = await w.waitFor(name, ready, "Ready");
      const id = o.status?.instanceID;
      assert.ok(id);
      // A finalizer removed by hand: the object goes, its VM stays behind.
      await w.kube.patch(CloudInstanceResource, "e2e", name, { metadata: { finalizers: [] } });
      await w.kube.delete(CloudInstanceResource, "e2e", name);
      await w.gone(name);
      assert.ok(
        sim.vms().some((v) => v.id === id),
        "the VM outlived its object",
      );
      await eventually(async () => {
        const events = await w.kube.list(EventResource, { namespace: "e2e" });
        return events.items.some((e) => e.reason === "OrphanedVM" && (e.message ?? "").includes(id));
      }, "an OrphanedVM Event on the operator's Pod");
      assert.match(
        await op.metrics.registry.getSingleMetricAsString("cloud_instance_orphaned_vms"),
        new RegExp(`provider="${provider}"`),
      );
      await eventually(
        () => Promise.resolve(!sim.vms().some((v) => v.id === id || v.id === leftover.id)),
        "both orphans deleted after the grace period",
      );
      assert.ok(
        sim.vms().some((v) => v.id === foreign.id),
        "another cluster's VM is never touched",
      );
      await outsideKubernetes(provider, sim, (d) =>
        d.delete({ id: foreign.id, providerData: foreign.providerData ?? {} }),
      );
    });
});
