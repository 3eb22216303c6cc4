/**
 * One --shards at a time under one leader election id: what a replica of S counts as a live
 * replica of another configuration, judged by when each Lease's record was first seen
 * unchanged on its own monotonic clock, and which Leases of another configuration it may
 * delete as long gone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { OtherShards, SHARDS_ANNOTATION } from "../../../src/controller/runtime/other-shards.ts";
import { memberLeaseName, shardLeaseName } from "../../../src/controller/runtime/sharding.ts";
import type { Lease } from "../../../src/kube/core-types.ts";

const ID = "op";
const LEASE_MS = 15_000;

function lease(name: string, holder: string, renew: string, shards?: string): Lease {
  return {
    metadata: {
      name,
      namespace: "ops",
      resourceVersion: renew,
      ...(shards === undefined ? {} : { annotations: { [SHARDS_ANNOTATION]: shards } }),
    },
    spec: { holderIdentity: holder, renewTime: renew, leaseDurationSeconds: 15 },
  };
}
const member = (identity: string, renew: string, shards?: string): Lease =>
  lease(memberLeaseName(ID, identity), identity, renew, shards);

test("a sharded replica counts a live single leader and live members of another S, never its own S or itself", () => {
  const o = new OtherShards({ id: ID, shards: 3, identity: "me", minDurationMs: LEASE_MS });
  o.observe(
    [
      lease(ID, "leader", "r1"),
      member("me", "r1", "3"),
      member("peer", "r1", "3"),
      member("six", "r1", "6"),
      member("older", "r1"),
      lease(shardLeaseName(ID, 0), "peer", "r1"),
      lease("someone-else", "x", "r1"),
    ],
    0,
  );
  assert.deepEqual(
    o.others(1).sort((a, b) => a.holder.localeCompare(b.holder)),
    [
      { lease: ID, holder: "leader", shards: "1" },
      { lease: memberLeaseName(ID, "older"), holder: "older", shards: "unknown" },
      { lease: memberLeaseName(ID, "six"), holder: "six", shards: "6" },
    ],
    "a member that does not say its S is of another configuration (a version before this check)",
  );
  // A released leader Lease holds nobody; leases gone from the listing are forgotten.
  o.observe([lease(ID, "", "r2"), member("six", "r1", "6")], 2);
  assert.deepEqual(
    o.others(3).map((r) => r.holder),
    ["six"],
  );
});

test("liveness is the record seen unchanged for less than a lease duration, on our clock: first sight counts as live", () => {
  const o = new OtherShards({ id: ID, shards: 1, identity: "me", minDurationMs: LEASE_MS });
  o.observe([member("stale", "long-ago", "4")], 100_000);
  assert.equal(o.others(100_000 + LEASE_MS - 1).length, 1, "seen for the first time: live for a duration");
  o.observe([member("stale", "long-ago", "4")], 100_000 + LEASE_MS);
  assert.equal(o.others(100_000 + LEASE_MS).length, 0, "unchanged for a lease duration: gone");
  assert.deepEqual(o.dead(100_000 + LEASE_MS), [
    { lease: memberLeaseName(ID, "stale"), resourceVersion: "long-ago" },
  ]);
  o.observe([member("stale", "renewed", "4")], 100_000 + LEASE_MS + 1);
  assert.equal(o.others(100_000 + LEASE_MS + 2).length, 1, "renewed: live again");
  assert.deepEqual(o.dead(100_000 + LEASE_MS + 2), []);
});

test("a single leader counts live members of any S, never another candidate for its own Lease; only other configurations' Leases are dead to it", () => {
  const o = new OtherShards({ id: ID, shards: 1, identity: "me", minDurationMs: LEASE_MS });
  o.observe([lease(ID, "standby", "r1"), member("sharded", "r1", "3")], 0);
  assert.deepEqual(
    o.others(1).map((r) => r.shards),
    ["3"],
  );
  assert.deepEqual(
    o.dead(LEASE_MS).map((d) => d.lease),
    [memberLeaseName(ID, "sharded")],
    "its own kind's Lease is the elector's to judge, never deleted here",
  );
  const sharded = new OtherShards({ id: ID, shards: 3, identity: "me", minDurationMs: LEASE_MS });
  sharded.observe([lease(ID, "gone", "r1"), member("peer", "r1", "3")], 0);
  assert.deepEqual(
    sharded.dead(LEASE_MS).map((d) => d.lease),
    [ID],
    "a member of its own S is left to the membership garbage collection",
  );
});
