import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  fairShare,
  isMemberLeaseName,
  memberLeaseName,
  planShards,
  shardLeaseName,
  shardOf,
  shardOfLeaseName,
  type ShardView,
} from "../../../src/controller/runtime/sharding.ts";

test("shardOf: stable, in range, one shard is shard 0, and UUIDs spread evenly", () => {
  assert.equal(shardOf("8a1f2c3e-0000-4000-8000-000000000001", 1), 0);
  // FNV-1a 32-bit of "a" is 0xe40c292c: fixed forever (every replica, every version).
  assert.equal(shardOf("a", 0x7fffffff), 0xe40c292c % 0x7fffffff);
  assert.equal(shardOf("a", 7), 0xe40c292c % 7);
  const uid = randomUUID();
  assert.equal(shardOf(uid, 5), shardOf(uid, 5));
  const S = 8;
  const counts = new Array<number>(S).fill(0);
  const N = 16_000;
  for (let i = 0; i < N; i++) {
    const s = shardOf(randomUUID(), S);
    assert.ok(s >= 0 && s < S);
    counts[s] = (counts[s] ?? 0) + 1;
  }
  // Expected 2,000 each; a fair hash stays well within ±15 %.
  for (const c of counts) assert.ok(c > 1700 && c < 2300, `shard count ${String(c)}`);
});

test("lease names: shard leases round-trip, member leases are valid object names", () => {
  assert.equal(shardLeaseName("op", 3), "op-shard-3");
  assert.equal(shardOfLeaseName("op", "op-shard-3", 4), 3);
  assert.equal(shardOfLeaseName("op", "op-shard-4", 4), undefined, "beyond --shards");
  assert.equal(shardOfLeaseName("op", "op-shard-03", 4), undefined);
  assert.equal(shardOfLeaseName("op", "op-member-x", 4), undefined);
  assert.equal(shardOfLeaseName("op", "other-shard-1", 4), undefined);
  assert.equal(memberLeaseName("op", "pod-abc-123"), "op-member-pod-abc-123");
  const odd = memberLeaseName("op", "Pod_Name");
  assert.match(odd, /^op-member-pod-name-[0-9a-f]{10}$/);
  assert.notEqual(odd, memberLeaseName("op", "pod_name"), "distinct identities, distinct names");
  const long = memberLeaseName("op", "x".repeat(400));
  assert.ok(long.length <= 253);
  assert.ok(isMemberLeaseName("op", long));
  assert.ok(!isMemberLeaseName("op", "op-shard-1"));
});

test("fairShare: floor and ceiling of S over the members", () => {
  assert.deepEqual(fairShare(3, 3), { lo: 1, hi: 1 });
  assert.deepEqual(fairShare(4, 3), { lo: 1, hi: 2 });
  assert.deepEqual(fairShare(2, 3), { lo: 0, hi: 1 });
  assert.deepEqual(fairShare(5, 0), { lo: 5, hi: 5 }, "alone");
});

const view = (self: string, members: string[], holders: string[]): ShardView => ({
  shards: holders.length,
  self,
  members,
  holders,
});

test("planShards: a lone replica takes every free shard at once", () => {
  const p = planShards(view("a", ["a"], ["", "", ""]));
  assert.equal(p.acquire, 3);
  assert.equal(p.release, 0);
});

test("planShards: a replica joining makes the holder of everything hand back its surplus", () => {
  // a holds 3 of 3; b joined (membership lease) holding nothing.
  const a = planShards(view("a", ["a", "b"], ["a", "a", "a"]));
  assert.deepEqual([a.lo, a.hi, a.mine, a.release], [1, 2, 3, 1]);
  const b = planShards(view("b", ["a", "b"], ["a", "a", "a"]));
  assert.equal(b.acquire, 0, "nothing free yet");
  // Once a released one, b takes it.
  assert.equal(planShards(view("b", ["a", "b"], ["a", "", "a"])).acquire, 1);
  // A third joins: a (2) is above hi=1, b (1) keeps its one.
  assert.equal(planShards(view("a", ["a", "b", "c"], ["a", "b", "a"])).release, 1);
  assert.equal(planShards(view("b", ["a", "b", "c"], ["a", "b", "a"])).release, 0);
});

test("planShards: at the ceiling, only the most loaded replica gives one to a needy newcomer", () => {
  // S=4, three replicas: lo=1, hi=2. a=2, b=2, c=0: one of a/b must give one back.
  const holders = ["a", "a", "b", "b"];
  const a = planShards(view("a", ["a", "b", "c"], holders));
  const b = planShards(view("b", ["a", "b", "c"], holders));
  assert.equal(a.release + b.release, 1, "exactly one hands back");
  assert.equal(a.release, 1, "ties broken by identity");
  // With a shard already free, nobody hands back: c takes the free one.
  const withFree = ["a", "", "b", "b"];
  assert.equal(planShards(view("b", ["a", "b", "c"], withFree)).release, 0);
  assert.equal(planShards(view("c", ["a", "b", "c"], withFree)).acquire, 1);
  // a (1 = lo) does not take the free shard while c is below lo.
  assert.equal(planShards(view("a", ["a", "b", "c"], withFree)).acquire, 0);
});

test("planShards: a replica that died loses its shards; the others take them up to their share", () => {
  // S=3; c's lease expired (holder seen as ""), its membership gone too.
  const a = planShards(view("a", ["a", "b"], ["a", "b", ""]));
  const b = planShards(view("b", ["a", "b"], ["a", "b", ""]));
  assert.equal(a.acquire, 1);
  assert.equal(b.acquire, 1, "both may try; the Lease decides");
  // Once a has it, b stays at its floor.
  assert.equal(planShards(view("b", ["a", "b"], ["a", "b", "a"])).acquire, 0);
});

test("planShards: a live holder whose membership lease expired still counts as a member", () => {
  const p = planShards(view("a", ["a"], ["a", "b", ""]));
  assert.equal(p.members, 2);
  assert.equal(p.hi, 2);
  assert.equal(p.acquire, 1);
});

test("planShards: balanced views are stable (no churn) for S from 1 to 12 and 1 to 5 replicas", () => {
  for (let S = 1; S <= 12; S++)
    for (let n = 1; n <= 5; n++) {
      const ids = Array.from({ length: n }, (_, i) => `r${String(i)}`);
      // Round-robin is a balanced assignment: nobody acquires (nothing free) or releases.
      const holders = Array.from({ length: S }, (_, i) => ids[i % n] ?? "");
      for (const self of ids) {
        const p = planShards(view(self, ids, holders));
        assert.equal(p.release, 0, `S=${String(S)} n=${String(n)} ${self} releases`);
        assert.equal(p.acquire, 0, `S=${String(S)} n=${String(n)} ${self} acquires`);
      }
    }
});

test("planShards: replicas applying the rule in turn converge to a balanced split", () => {
  for (let S = 1; S <= 12; S++)
    for (let n = 1; n <= 5; n++) {
      const ids = Array.from({ length: n }, (_, i) => `r${String(i)}`);
      // Worst start: r0 holds every shard.
      const holders = new Array<string>(S).fill("r0");
      for (let round = 0; round < 50; round++) {
        for (const self of ids) {
          const p = planShards(view(self, ids, holders));
          for (let k = 0; k < p.release; k++) holders[holders.lastIndexOf(self)] = "";
          for (let k = 0; k < p.acquire; k++) {
            const free = holders.indexOf("");
            if (free >= 0) holders[free] = self;
          }
        }
      }
      const counts = ids.map((id) => holders.filter((h) => h === id).length);
      const { lo, hi } = fairShare(S, n);
      assert.ok(
        holders.every((h) => h !== "") && counts.every((c) => c >= lo && c <= hi),
        `S=${String(S)} n=${String(n)}: ${JSON.stringify(counts)}`,
      );
    }
});
