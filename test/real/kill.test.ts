// A shortened kill test on a real kube-apiserver: the operator is SIGKILLed right after a
// provider created a VM (before the operator could write the VM's id into the status) and again
// mid-lifecycle, then restarted. Every CloudInstance ends with exactly one VM, and none is left
// after deletion. The in-memory twin at full size is test/chaos/kills.chaos.ts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CloudInstanceResource } from "../../src/kube/resources.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";
import type { ProviderName } from "../../src/api/index.ts";
import type { Guarded } from "./processes.ts";
import { SKIP } from "./envtest.ts";
import { ready, sleep, startRealWorld, until, type RealWorld } from "./world.ts";

const NS = "kills";
/** Kill on these provider creates (1-based, counted across providers). */
const KILL_ON_CREATE = new Set([1, 4]);
const PER_PROVIDER = 2;

let w: RealWorld;
let operator: Guarded;
let creates = 0;
let kills = 0;
let maxVmsPerOwner = 0;
let sampling = true;
let sampler: Promise<void> = Promise.resolve();
let supervisor: Promise<void> = Promise.resolve();

function sample(): void {
  for (const sim of w.sims.values()) {
    const perOwner = new Map<string, number>();
    for (const v of sim.vms()) if (v.ownerUID) perOwner.set(v.ownerUID, (perOwner.get(v.ownerUID) ?? 0) + 1);
    for (const n of perOwner.values()) maxVmsPerOwner = Math.max(maxVmsPerOwner, n);
  }
}

describe("real API server: the operator SIGKILLed mid-lifecycle", { skip: SKIP }, () => {
  before(async () => {
    w = await startRealWorld({
      namespace: NS,
      // Before the provider's answer goes back: the operator dies with a VM it has not
      // recorded anywhere yet.
      onProviderCreate: () => {
        if (KILL_ON_CREATE.has(++creates)) {
          operator.kill("SIGKILL");
          kills++;
        }
      },
    });
    operator = w.startOperator();
    // Restarts the operator whenever it dies, like a Deployment would.
    supervisor = (async () => {
      while (sampling) {
        await Promise.race([operator.exited, sleep(200)]);
        if (sampling && !operator.alive()) operator = w.startOperator();
      }
    })();
    sampler = (async () => {
      while (sampling) {
        sample();
        await sleep(50);
      }
    })();
  });
  after(async () => {
    sampling = false;
    await Promise.all([sampler, supervisor]);
    await w?.close();
  });

  test(`${PER_PROVIDER} CloudInstances per provider through kills and restarts: one VM each, none left after deletion`, async () => {
    const names: { provider: ProviderName; name: string }[] = PROVIDER_NAMES.flatMap((provider) =>
      Array.from({ length: PER_PROVIDER }, (_, i) => ({ provider, name: `${provider}-${i}` })),
    );
    for (const n of names) await w.instance(n.provider, n.name);
    // One more kill lands mid-lifecycle, wherever the operator is by then.
    await sleep(1500);
    operator.kill("SIGKILL");
    kills++;
    for (const n of names)
      await w.waitFor(n.name, (o) => ready(o) && o.status?.phase === "Running", "Running and Ready", 120_000);
    sample();
    assert.ok(kills >= 3, `the operator was killed ${kills} times`);
    assert.equal(maxVmsPerOwner, 1, "never two VMs for one CloudInstance");
    for (const n of names) {
      const o = await w.get(n.name);
      const vms = w.sims
        .get(n.provider)!
        .vms()
        .filter((v) => v.ownerUID === o.metadata.uid);
      assert.equal(vms.length, 1, `${n.name}: one VM`);
      assert.ok(o.status?.instanceID?.includes(vms[0]!.id), `${n.name}: the status names that VM`);
    }
    for (const n of names) await w.kube.delete(CloudInstanceResource, NS, n.name);
    for (const n of names) await w.gone(n.name, 120_000);
    await until(
      () => [...w.sims.values()].reduce((s, sim) => s + sim.vms().length, 0),
      (n) => n === 0,
      "no VM left",
      60_000,
    );
    assert.equal(maxVmsPerOwner, 1, "never two VMs for one CloudInstance");
  });
});
