// Acceptance size (issue #26): `npm run test:chaos`. The small variant is sharding.test.ts.
import { test } from "node:test";
import { assertShardChaos, shardChaos, type ShardChaosOptions } from "./sharding.ts";

const ACCEPTANCE: ShardChaosOptions = {
  replicas: 3,
  shards: 6,
  objects: 3_000,
  disruptions: ["kill", "blackhole", "kill", "kill", "blackhole"],
  // Thousands of objects: a drift check every minute, not every few seconds.
  resync: "60s",
  waitMs: 600_000,
};

async function run(opts: ShardChaosOptions): Promise<void> {
  const report = await shardChaos(opts);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  assertShardChaos(report, opts);
}

test("3 replicas, 3,000 objects, 6 shards: random SIGKILLs and a black-holed replica; every provider mutation from its shard's holder, 0 duplicated and 0 leaked VMs, all Ready again after each disruption", async () => {
  await run(ACCEPTANCE);
});

test("the same with --shard-watch=labels on every replica: each watches only its shards, and the fence holds as before", async () => {
  await run({ ...ACCEPTANCE, shardWatch: "labels" });
});
