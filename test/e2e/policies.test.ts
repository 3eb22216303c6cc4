/**
 * What users of Crossplane ask for, end to end on every provider: a VM changed outside
 * Kubernetes is listed in status.drift and either brought back (driftPolicy Correct) or left
 * alone (Report); managementPolicies [Observe] imports a VM read-only and never deletes it.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { capabilitiesOf } from "../../src/providers/driver.ts";
import {
  startWorld,
  eventually,
  outsideKubernetes,
  CloudInstanceResource,
  cond,
  ready,
  type Operator,
} from "./harness.ts";
import type { CloudInstance, ProviderName } from "../../src/api/index.ts";
import { ANNOTATION_EXTERNAL_ID, ANNOTATION_FORCE_ADOPT } from "../../src/api/index.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";
import { SIMULATORS } from "../sim/all.ts";
import { EventResource } from "../../src/kube/resources.ts";
import { DRIVERS } from "../../src/providers/registry.ts";
import { desiredMachine } from "../providers/harness.ts";
import type { Simulator } from "../sim/common.ts";

let w: Awaited<ReturnType<typeof startWorld>>;
let op: Operator;

before(async () => {
  w = await startWorld({ providers: PROVIDER_NAMES.filter((p) => p !== "m2s") });
  op = await w.startOperator();
});
after(async () => {
  await w.close();
});

const sim = (p: ProviderName): Simulator => {
  const s = w.sims.get(p);
  assert.ok(s);
  return s;
};
const patch = (name: string, spec: Record<string, unknown>) =>
  w.kube.patch(CloudInstanceResource, "e2e", name, { spec });
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stops the VM through the provider's API, as a person at the provider's console would. */
async function stopOutside(provider: ProviderName, o: CloudInstance): Promise<void> {
  const id = o.status?.instanceID;
  assert.ok(id);
  await outsideKubernetes(provider, sim(provider), async (d) => {
    await d.stop!({ id, providerData: o.status?.providerData ?? {} });
  });
}

for (const provider of PROVIDER_NAMES) {
  const kit = SIMULATORS[provider];
  describe(`policies on ${provider}`, () => {
    test(
      "driftPolicy Report lists a VM stopped outside Kubernetes and leaves it; Correct brings it back",
      { skip: kit.canStop ? false : `${provider} cannot stop a VM` },
      async () => {
        const name = `${provider}-drift`;
        await w.instanceOn(provider, name, { driftPolicy: "Report" });
        const o = await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Running", "Running");
        await stopOutside(provider, o);
        const drifted = await w.waitFor(
          name,
          (x) => x.status?.drift?.some((d) => d.field === "powerState" && d.observed === "Stopped") ?? false,
          "powerState drift reported",
        );
        assert.equal(cond(drifted, "Ready")?.reason, "Observed");
        await eventually(
          async () =>
            (await op.metrics.registry.getSingleMetricAsString("cloud_instance_drifted")).includes(
              `cloud_instance_drifted{provider="${provider}",field="powerState"} 1`,
            ),
          "the drift metric counts it",
        );
        await settle(500);
        assert.equal((await w.get(name)).status?.phase, "Stopped", "Report never starts it again");
        await patch(name, { driftPolicy: "Correct" });
        const back = await w.waitFor(
          name,
          (x) => ready(x) && x.status?.phase === "Running" && x.status.drift === undefined,
          "started again, drift gone",
        );
        assert.equal(back.status?.instanceID, o.status?.instanceID);
        await w.kube.delete(CloudInstanceResource, "e2e", name);
        await w.gone(name);
      },
    );

    test("restart-requested-at reboots the VM once per new value (Unsupported where it cannot)", async () => {
      const name = `${provider}-restart`;
      await w.instanceOn(provider, name);
      const o = await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Running", "Running");
      const canReboot = await outsideKubernetes(provider, sim(provider), async (d) => {
        await d.get({ id: o.status?.instanceID ?? "", providerData: {} });
        return capabilitiesOf(d).has("reboot");
      });
      await w.kube.patch(CloudInstanceResource, "e2e", name, {
        metadata: { annotations: { "compute.instance-operator.dev/restart-requested-at": "first" } },
      });
      if (canReboot) {
        const restarted = await w.waitFor(
          name,
          (x) => x.status?.lastHandledRestartAt === "first" && ready(x) && x.status.phase === "Running",
          "restarted and Running again",
        );
        assert.equal(restarted.status?.instanceID, o.status?.instanceID);
        const events = await w.kube.list(EventResource, { namespace: "e2e" });
        assert.equal(
          events.items.filter((e) => e.involvedObject.name === name && e.reason === "Restarting").length,
          1,
          "one restart for one value",
        );
      } else {
        const refused = await w.waitFor(
          name,
          (x) => cond(x, "Synced")?.reason === "Unsupported",
          "Unsupported",
        );
        assert.match(cond(refused, "Synced")?.message ?? "", /restarting/);
      }
      await w.kube.delete(CloudInstanceResource, "e2e", name);
      await w.gone(name);
    });

    test("managementPolicies [Observe] imports a VM read-only and never deletes it", async () => {
      const s = sim(provider);
      const created = await outsideKubernetes(provider, s, (d) =>
        d.create(
          desiredMachine(kit.spec, DRIVERS[provider].optionsSchema.parse(kit.spec.providerOptions ?? {}), {
            ownerUID: `outside-${provider}`,
            name: `outside-${provider}`,
            namespace: "elsewhere",
          }),
        ),
      );
      const name = `${provider}-import`;
      // The VM carries the mark of whoever made it; importing it is a deliberate takeover.
      await w.instanceOn(
        provider,
        name,
        { managementPolicies: ["Observe"], powerState: "Stopped" },
        { [ANNOTATION_EXTERNAL_ID]: created.id, [ANNOTATION_FORCE_ADOPT]: "true" },
      );
      const o = await w.waitFor(
        name,
        (x) => cond(x, "Ready")?.reason === "Observed" && x.status?.phase === "Running",
        "observed, not stopped",
      );
      assert.equal(o.status?.instanceID, created.id);
      assert.match(cond(o, "Ready")?.message ?? "", /powerState.*without Update/);
      await settle(500);
      assert.equal(s.vms().find((v) => v.id === created.id)?.status !== undefined, true);
      await w.kube.delete(CloudInstanceResource, "e2e", name);
      await w.gone(name);
      assert.ok(
        s.vms().some((v) => v.id === created.id),
        "the imported VM outlives the object",
      );
      await outsideKubernetes(provider, s, (d) =>
        d.delete({ id: created.id, providerData: created.providerData ?? {} }),
      );
      await eventually(() => Promise.resolve(!s.vms().some((v) => v.id === created.id)), "cleaned up");
    });
  });
}
