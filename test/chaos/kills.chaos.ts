// Full size: `npm run test:chaos`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertNoSecretLeaked, killsAndFaults } from "./scenarios.ts";

test("500 lifecycles under SIGKILLs every 1–5 s, provider faults and watch drops: no VM leaked or duplicated", async () => {
  const { report, world } = await killsAndFaults({
    lifecycles: 500,
    concurrency: 60,
    killEveryMs: [1000, 5000],
    timeoutMs: 900_000,
  });
  try {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    assert.equal(report.maxVmsPerOwner, 1, "never two VMs for one owner");
    for (const [provider, left] of Object.entries(report.vmsLeft))
      assert.equal(left, 0, `${provider} VMs left`);
    assert.ok(report.kills >= 3, `the operator was killed ${String(report.kills)} times`);
    const scan = await assertNoSecretLeaked(world);
    process.stdout.write(`secret scan: ${JSON.stringify(scan)}\n`);
  } finally {
    await world.close();
  }
});
