// Full size: `npm run test:chaos`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertNoSecretLeaked, killsAndFaults } from "./scenarios.ts";
import { SIM_PROFILES } from "../sim/common.ts";

for (const profile of SIM_PROFILES)
  test(`${profile} profile: 500 lifecycles under SIGKILLs every 1–5 s and in the create window, provider faults and watch drops: no VM leaked or duplicated`, async () => {
    const { report, world } = await killsAndFaults({
      lifecycles: 500,
      concurrency: 60,
      killEveryMs: [1000, 5000],
      createWindowKillRate: 0.3,
      timeoutMs: 900_000,
      profile,
    });
    try {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      assert.equal(report.maxVmsPerOwner, 1, "never two VMs for one owner");
      for (const [provider, left] of Object.entries(report.vmsLeft))
        assert.equal(left, 0, `${provider} VMs left`);
      assert.ok(report.kills >= 100, `the operator was killed ${String(report.kills)} times (at least 100)`);
      assert.ok(
        report.createWindowKills >= 50,
        `${String(report.createWindowKills)} kills in the create window`,
      );
      const scan = await assertNoSecretLeaked(world);
      process.stdout.write(`secret scan: ${JSON.stringify(scan)}\n`);
    } finally {
      await world.close();
    }
  });
