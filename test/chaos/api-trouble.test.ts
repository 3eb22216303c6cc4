/**
 * Kubernetes API trouble: 500s, 429s and 409 conflicts on status writes while objects
 * converge. The operator retries with backoff and converges; the number of API requests stays
 * bounded (no busy loop).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { CloudInstance } from "../../src/api/index.ts";
import { persist, sleep, startChaosWorld, type ChaosWorld, type OperatorProcess } from "./world.ts";

let world: ChaosWorld;
let operator: OperatorProcess;
before(async () => {
  world = await startChaosWorld();
  operator = await world.startOperator();
});
after(
  async () => {
    await operator.stop();
    await world.close();
  },
  { timeout: 60_000 },
);

const ready = (o: CloudInstance): boolean =>
  o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

test("500s, 429s and status conflicts from the API server: every object converges, no busy loop", async () => {
  const n = 30;
  const start = world.api.requestCounts().total;
  let injecting = true;
  let injected = 0;
  const chaos = (async () => {
    for (let i = 0; injecting; i++) {
      if (i % 3 === 0) world.api.faults.failNext(3, 500);
      else if (i % 3 === 1) world.api.faults.failNext(3, 429);
      else world.api.faults.conflictStatusWrites(5);
      injected++;
      await sleep(250);
    }
  })();
  const providers = ["m2s", "vscale", "zomro"] as const;
  try {
    for (let i = 0; i < n; i++)
      await persist(() => world.instance(providers[i % providers.length] ?? "m2s", `api-${String(i)}`));
    await sleep(5_000);
  } finally {
    // A failure above must not leave faults injected forever: that kept the file alive for hours.
    injecting = false;
    await chaos;
  }
  const deadline = Date.now() + 60_000;
  while (!(world.instances().length === n && world.instances().every(ready))) {
    if (Date.now() > deadline) assert.fail("objects did not converge after the API trouble");
    await sleep(200);
  }
  const requests = world.api.requestCounts().total - start;
  assert.ok(injected >= 10, "faults were injected throughout");
  // Creating 30 objects costs the test ~2 requests each; the operator's share per object
  // (writes, retries, watches, Events) stays small when nothing loops.
  assert.ok(requests < n * 40, `${String(requests)} API requests for ${String(n)} objects`);
  for (const sim of world.sims.values()) {
    const perOwner = new Map<string, number>();
    for (const v of sim.vms()) perOwner.set(v.ownerUID ?? "", (perOwner.get(v.ownerUID ?? "") ?? 0) + 1);
    for (const c of perOwner.values()) assert.equal(c, 1, "one VM per object despite conflicts");
  }
});
