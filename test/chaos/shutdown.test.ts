/**
 * SIGTERM while 100 reconciles are in flight: in-flight work finishes within the grace period,
 * the process exits 0, every VM that exists is recorded in its object's status, and a new
 * operator converges everything with exactly one VM per object.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { CloudInstance } from "../../src/api/index.ts";
import { persist, sleep, startChaosWorld, type ChaosWorld } from "./world.ts";

let world: ChaosWorld;
before(async () => {
  // Slow providers keep every reconcile busy long enough to be caught mid-flight.
  world = await startChaosWorld({ faults: { latencyMs: 400 } });
});
after(
  async () => {
    await world.close();
  },
  { timeout: 60_000 },
);

const ready = (o: CloudInstance): boolean =>
  o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

test("SIGTERM during 100 in-flight reconciles loses nothing and leaves a consistent state", async () => {
  const n = 100;
  for (let i = 0; i < n; i++) await persist(() => world.instance(i % 2 ? "m2s" : "mos", `stop-${String(i)}`));
  const operator = await world.startOperator([
    "--max-concurrent-reconciles=100",
    "--shutdown-grace-period=20s",
    "--provider-max-concurrent=100",
    "--provider-timeout=5s",
  ]);
  // Wait until the provider calls are under way, then stop.
  const calls = (): number =>
    [...world.sims.values()].reduce(
      (a, s) => a + [...s.requestCounts.values()].reduce((x, y) => x + y, 0),
      0,
    );
  const deadline = Date.now() + 30_000;
  while (calls() < 50 && Date.now() < deadline) await sleep(20);
  operator.kill("SIGTERM");
  const code = await operator.exited;
  assert.equal(code, 0, "a clean exit after draining, without process.exit");
  // What was still open when main returned: nothing but the process's own stdio may remain.
  const last = world.logs
    .join("")
    .split("\n")
    .filter((l) => l.includes(`"pid":${String(operator.pid)}`) && l.includes('"msg":"stopped"'))
    .map((l) => JSON.parse(l) as { resources: string[] })[0];
  assert.ok(last, "main logged what was left open");
  process.stdout.write(`# open at exit: ${JSON.stringify(last.resources)}\n`);
  assert.deepEqual(
    last.resources.filter((r) => !["PipeWrap", "TTYWrap", "FSReqCallback"].includes(r)),
    [],
    "no socket, server or timer left open",
  );

  // Consistent: every VM that exists is the one its object records.
  const byUid = new Map(world.instances().map((o) => [o.metadata.uid ?? "", o]));
  let vms = 0;
  for (const sim of world.sims.values()) {
    for (const v of sim.vms()) {
      vms++;
      const o = byUid.get(v.ownerUID ?? "");
      assert.ok(o, `VM ${v.id} belongs to an object`);
      assert.equal(
        o.status?.instanceID,
        v.id,
        `${o.metadata.name ?? ""}: the VM created before shutdown is recorded`,
      );
    }
  }
  assert.ok(vms > 0, "some creates were in flight when SIGTERM came");

  const again = await world.startOperator();
  try {
    const until = Date.now() + 60_000;
    while (!world.instances().every(ready)) {
      if (Date.now() > until) assert.fail("objects did not converge after the restart");
      await sleep(200);
    }
    for (const sim of world.sims.values()) {
      const owners = sim.vms().map((v) => v.ownerUID);
      assert.equal(new Set(owners).size, owners.length, "one VM per object");
    }
    assert.equal(
      [...world.sims.values()].reduce((a, s) => a + s.vms().length, 0),
      n,
      "exactly one VM for each of the objects",
    );
  } finally {
    await again.stop();
  }
});
