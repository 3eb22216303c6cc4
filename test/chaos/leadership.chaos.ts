// Full size (`npm run test:chaos`): 20 partitions of the leader per mode.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EXIT_SLACK_MS, LEASE, partitionTheLeader } from "./leadership.ts";

for (const mode of ["blackhole", "slow"] as const)
  test(`${mode}, 20 times: a partitioned leader sends no provider mutation once its lease could have expired, and exits non-zero`, async () => {
    const report = await partitionTheLeader(mode, 20);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    assert.equal(report.lateMutations, 0);
    for (const code of report.exitCodes) assert.ok(code !== 0 && code !== null, `exit code ${String(code)}`);
    for (const ms of report.exitAfterMs)
      assert.ok(ms <= LEASE.renewDeadlineMs + EXIT_SLACK_MS, `exited ${String(ms)} ms after the partition`);
  });
