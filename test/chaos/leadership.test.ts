// The shortened variant of test/chaos/leadership.chaos.ts that runs in `npm test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EXIT_SLACK_MS, LEASE, partitionTheLeader } from "./leadership.ts";

for (const [mode, repetitions] of [
  ["blackhole", 2],
  ["slow", 1],
] as const)
  test(`${mode}: a partitioned leader sends no provider mutation once its lease could have expired, and exits non-zero`, async () => {
    const report = await partitionTheLeader(mode, repetitions);
    process.stdout.write(`# ${JSON.stringify(report)}\n`);
    assert.equal(report.lateMutations, 0, "no mutation from the old leader after its lease could expire");
    for (const code of report.exitCodes) assert.ok(code !== 0 && code !== null, `exit code ${String(code)}`);
    for (const ms of report.exitAfterMs)
      assert.ok(ms <= LEASE.renewDeadlineMs + EXIT_SLACK_MS, `exited ${String(ms)} ms after the partition`);
  });
