/**
 * The operator process SIGKILLed exactly between m2s's create and the status write, against
 * the strict profile (list items without tags): every object still ends with one VM, and
 * none is left once the objects are deleted. The chaos suite kills at random points for every
 * provider; this one aims at m2s's window, every create until the quota of kills is spent.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startChaosWorld, sleep, type OperatorProcess } from "../../chaos/world.ts";
import { CloudInstanceResource } from "../../../src/kube/resources.ts";
import type { CloudInstance } from "../../../src/api/index.ts";

const OBJECTS = 4;
const KILLS = 4;
const DEADLINE_MS = 90_000;

const ready = (o: CloudInstance): boolean =>
  o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

async function until(what: string, pred: () => boolean): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await sleep(100);
  }
}

test("m2s strict: SIGKILL between the provider's create and the status write leaves one VM per object and none after deletion", async () => {
  const world = await startChaosWorld({ profile: "strict", namespace: "kill-m2s" });
  const sim = world.sims.get("m2s");
  assert.ok(sim);
  let operator: OperatorProcess = await world.startOperator();
  let kills = 0;
  let done = false;
  let maxPerOwner = 0;
  let inWindow = 0;
  const killed = new Set<OperatorProcess>();
  sim.faults.onCreated = () => {
    if (kills >= KILLS) return;
    inWindow++;
    // A create already in flight from a process just killed is in the window too.
    if (killed.has(operator)) return;
    kills++;
    const dead = operator;
    killed.add(dead);
    dead.kill("SIGKILL");
    void dead.exited.then(async () => {
      if (!done) operator = await world.startOperator();
    });
  };
  const sampler = (async () => {
    while (!done) {
      const perOwner = new Map<string, number>();
      for (const v of sim.vms())
        if (v.ownerUID) perOwner.set(v.ownerUID, (perOwner.get(v.ownerUID) ?? 0) + 1);
      for (const n of perOwner.values()) maxPerOwner = Math.max(maxPerOwner, n);
      await sleep(20);
    }
  })();
  try {
    const names = Array.from({ length: OBJECTS }, (_, i) => `k${String(i)}`);
    for (const name of names) await world.instance("m2s", name);
    await until("every object Ready with its VM id", () => {
      const all = world.instances();
      return all.length === OBJECTS && all.every((o) => ready(o) && o.status?.instanceID !== undefined);
    });
    assert.ok(kills >= 1, "the operator was killed in the window at least once");
    assert.equal(inWindow, OBJECTS, "every VM was born while its operator was being killed");
    for (const o of world.instances()) {
      assert.deepEqual(
        sim
          .vms()
          .filter((v) => v.ownerUID === o.metadata.uid)
          .map((v) => v.id),
        [o.status?.instanceID],
        `one VM for ${o.metadata.name ?? ""}`,
      );
    }
    assert.equal(
      sim.requestCounts.get("POST /v1/instances"),
      OBJECTS,
      "one create per object, never a second",
    );
    for (const name of names) await world.kube.delete(CloudInstanceResource, world.namespace, name);
    await until("every object gone", () => world.instances().length === 0);
    await until("every VM gone", () => sim.vms().length === 0);
    assert.equal(maxPerOwner, 1, "never two VMs for one owner, even for a moment");
    process.stdout.write(
      `# m2s strict: ${String(kills)} kills, ${String(inWindow)} of ${String(OBJECTS)} VMs born in the window\n`,
    );
  } finally {
    done = true;
    await sampler;
    await operator.stop();
    await world.close();
  }
});
