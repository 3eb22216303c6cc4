import { Gauge, type Registry } from "prom-client";

/** Who acts: the leader lease (controller-runtime's name) and, with --shards, the shards held. */
export function leadershipMetrics(registers: Registry[]) {
  return {
    leaderStatus: new Gauge({
      name: "leader_election_master_status",
      help: "1 when this process holds the leader lease, 0 otherwise.",
      labelNames: ["name"],
      registers,
    }),
    shards: new Gauge({
      name: "cloud_instance_shards",
      help: "Shards the objects are split into (--shards) when sharding; 0 with a single leader. Alerts compare it with the sum of cloud_instance_shards_owned.",
      registers,
    }),
    shardsOwned: new Gauge({
      name: "cloud_instance_shards_owned",
      help: "Shards (--shards) whose Lease this replica holds and whose objects it reconciles.",
      registers,
    }),
    shardMembers: new Gauge({
      name: "cloud_instance_shard_members",
      help: "Operator replicas this replica sees alive (membership Leases), itself included.",
      registers,
    }),
  };
}
