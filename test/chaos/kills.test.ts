// The shortened variant of test/chaos/kills.chaos.ts that runs in `npm test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertNoSecretLeaked, killsAndFaults } from "./scenarios.ts";

test("40 lifecycles under SIGKILLs, provider faults and watch drops: no VM leaked or duplicated, no secret in logs", async () => {
  const { report, world } = await killsAndFaults({
    lifecycles: 40,
    concurrency: 20,
    killEveryMs: [1000, 3000],
    timeoutMs: 100_000,
  });
  try {
    assert.equal(report.maxVmsPerOwner, 1, "never two VMs for one owner");
    for (const [provider, left] of Object.entries(report.vmsLeft))
      assert.equal(left, 0, `${provider} VMs left`);
    assert.ok(report.kills >= 1, "the operator was killed at least once");
    await assertNoSecretLeaked(world);
  } finally {
    await world.close();
  }
});
