/**
 * Every provider's whole lifecycle, end to end, on both simulator profiles — the strict one
 * (only what the provider's document shows) and the default one — with a budget of provider
 * calls: create, tags, stop, start, resize and delete where the driver can, `Unsupported` where
 * it cannot, and never more calls than the budget below. A driver that loops (a write the
 * provider ignores, a state it misreads) blows the budget instead of passing slowly.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { capabilitiesOf } from "../../src/providers/driver.ts";
import { startWorld, eventually, outsideKubernetes, CloudInstanceResource } from "./harness.ts";
import { cond, ready } from "./harness.ts";
import type { CloudInstance, ProviderName } from "../../src/api/index.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";
import { SIMULATORS } from "../sim/all.ts";
import { SIM_PROFILES, type Simulator } from "../sim/common.ts";

const total = (sim: Simulator): number => [...sim.requestCounts.values()].reduce((a, b) => a + b, 0);

/**
 * What the driver can do on this account, as it knows after reading the VM once: some drivers
 * learn it from the account (vscale without a tags API drops "tags").
 */
function capabilitiesAfterRead(
  provider: ProviderName,
  sim: Simulator,
  id: string,
): Promise<ReadonlySet<string>> {
  return outsideKubernetes(provider, sim, async (driver) => {
    await driver.get({ id, providerData: {} });
    return new Set<string>(capabilitiesOf(driver));
  });
}

for (const profile of SIM_PROFILES) {
  describe(`lifecycle within a call budget, ${profile} profile`, () => {
    let w: Awaited<ReturnType<typeof startWorld>>;
    before(async () => {
      w = await startWorld({ providers: PROVIDER_NAMES.filter((p) => p !== "m2s"), profile });
      await w.startOperator();
    });
    after(async () => {
      await w.close();
    });

    for (const provider of PROVIDER_NAMES) {
      const kit = SIMULATORS[provider];
      test(`${provider}: create, tags, stop/start, resize, delete — one VM, none left, ≤ ${String(kit.lifecycleCallBudget)} calls`, async () => {
        const sim = w.sims.get(provider);
        assert.ok(sim);
        const start = total(sim);
        const name = `${provider}-budget`;
        const vmsOf = (o: CloudInstance) => sim.vms().filter((v) => v.ownerUID === o.metadata.uid);
        const patch = (spec: Record<string, unknown>) =>
          w.kube.patch(CloudInstanceResource, "e2e", name, { spec });
        const steps: string[] = [];
        const step = (what: string) => steps.push(`${what}: ${String(total(sim) - start)} calls`);

        await w.instanceOn(provider, name, { tags: [] });
        let o = await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Running", "Running and Ready");
        assert.equal(vmsOf(o).length, 1, "one VM");
        step("create");
        const caps = await capabilitiesAfterRead(provider, sim, o.status?.instanceID ?? "");

        await patch({ tags: ["team-a", "env-test"] });
        if (caps.has("tags")) {
          o = await w.waitFor(
            name,
            (x) => ready(x) && [...(x.status?.tags ?? [])].sort().join() === "env-test,team-a",
            "tags applied",
          );
        } else {
          o = await w.waitFor(name, (x) => cond(x, "Synced")?.reason === "Unsupported", "tags Unsupported");
          assert.match(cond(o, "Synced")?.message ?? "", /tags/);
          await patch({ tags: [] });
          await w.waitFor(
            name,
            (x) => ready(x) && cond(x, "Synced")?.status === "True",
            "Ready without tags",
          );
        }
        step("tags");

        if (kit.canStop) {
          await patch({ powerState: "Stopped" });
          await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Stopped", "Stopped");
          await patch({ powerState: "Running" });
          await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Running", "Running again");
          step("stop/start");
        }
        if (kit.resizeTo !== undefined) {
          await patch({ plan: kit.resizeTo });
          o = await w.waitFor(name, (x) => ready(x) && x.status?.plan === kit.resizeTo, "resized");
          step("resize");
        }
        assert.equal(vmsOf(o).length, 1, "still exactly one VM");

        await w.kube.delete(CloudInstanceResource, "e2e", name);
        await w.gone(name);
        await eventually(() => Promise.resolve(vmsOf(o).length === 0), "VM gone at the provider");
        step("delete");

        const used = total(sim) - start;
        process.stdout.write(`# ${provider} (${profile}): ${steps.join(", ")}\n`);
        assert.ok(
          used <= kit.lifecycleCallBudget,
          `${provider} (${profile}) used ${String(used)} provider calls, budget ${String(kit.lifecycleCallBudget)}: ${steps.join(", ")}`,
        );
      });
    }
  });
}
