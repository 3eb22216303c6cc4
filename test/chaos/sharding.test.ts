// Small variant in `npm test`; the 3,000-object acceptance run is sharding.chaos.ts.
import { test } from "node:test";
import { assertShardChaos, shardChaos, type ShardChaosOptions } from "./sharding.ts";

test(
  "3 replicas (one with --shard-watch=labels), 6 shards, 60 objects: SIGKILLs and a black-holed replica; every mutation from its shard's holder, no VM duplicated or leaked, Ready again after each disruption",
  { timeout: 300_000 },
  async () => {
    const opts: ShardChaosOptions = {
      replicas: 3,
      shards: 6,
      objects: 60,
      disruptions: ["kill", "blackhole", "kill"],
      resync: "5s",
      // One replica watches only its shards, the others everything: both modes under the same
      // disruptions, and side by side as during a rolling change of the flag.
      shardWatch: "mixed",
      logLevel: process.env["SHARD_LOG_LEVEL"] ?? "info",
      waitMs: Number(process.env["SHARD_WAIT_MS"] ?? 90_000),
    };
    const report = await shardChaos(opts);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    assertShardChaos(report, opts);
  },
);
