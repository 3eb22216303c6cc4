/**
 * The ownership mark in InstanceName: `cio-<uid>--<cluster>` (or `cio-<uid>` without a cluster
 * identity, and on VMs made before), found by owner and listed for the orphan sweeper.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { markOf, ownerName } from "../../../src/providers/mos/index.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { closeWorlds, desired, FAST, running, total, world } from "./world.ts";

after(closeWorlds);

describe("the mark", () => {
  test("round-trips owner and cluster; anything else is unmarked", () => {
    const uid = "0f5c6a8e-2b1d-4c3e-9f7a-1b2c3d4e5f60";
    assert.equal(ownerName(uid, "a1b2c3d4"), `cio-${uid}--a1b2c3d4`);
    assert.equal(ownerName(uid, ""), `cio-${uid}`);
    assert.deepEqual(markOf(ownerName(uid, "a1b2c3d4")), { ownerUID: uid, cluster: "a1b2c3d4" });
    assert.deepEqual(markOf(ownerName(uid, "")), { ownerUID: uid, cluster: undefined });
    for (const name of [undefined, "", "web-1", "cio-", "cio---c1", `cio-${uid}--`, "CIO-x"])
      assert.equal(markOf(name), undefined, String(name));
    assert.ok(ownerName(uid, "abcdefghij012345").length <= 58, "the longest mark");
  });
});

for (const profile of SIM_PROFILES) {
  describe(`mos ownership marks (${profile} profile)`, () => {
    test("a VM carries this cluster's identity in its name, and reports it when observed", async () => {
      const { sim, d } = await world(profile);
      const want = desired({ clusterID: "c1" });
      const ref = await running(d, want);
      assert.equal(sim.vms().find((v) => v.id === ref.id)?.ownerUID, want.ownerUID);
      const m = await d.get(ref);
      assert.equal(m?.name, `cio-${want.ownerUID}--c1`);
      assert.equal(m?.ownerUID, want.ownerUID);
      assert.equal(m?.ownerCluster, "c1");
      const bare = await running(d, desired({ clusterID: "" }));
      const b = await d.get(bare);
      assert.equal(b?.ownerCluster, undefined, "no cluster identity: none claimed");
    });

    test("findByOwner finds this cluster's VM and one marked before clusters, never another cluster's", async () => {
      const { d } = await world(profile);
      const want = desired({ clusterID: "c1" });
      const legacy = await running(d, { ...want, clusterID: "" });
      const ours = await running(d, want);
      await running(d, { ...want, clusterID: "c2" });
      const found = await d.findByOwner!(want.ownerUID, want);
      assert.deepEqual(found.map((f) => f.id).sort(), [legacy.id, ours.id].sort());
      assert.deepEqual(
        found.map((f) => f.ownerCluster ?? "-").sort(),
        ["-", "c1"],
        "the old mark is adopted as it is",
      );
    });

    test("listOwned lists marked VMs only, over every page, one DescribeInstances per 100 VMs", async () => {
      const { sim, d } = await world(profile, {}, undefined, FAST);
      const refs = await Promise.all(
        Array.from({ length: 103 }, (_, n) =>
          d.create(desired({ clusterID: n % 2 === 0 ? "c1" : "" })).then((r) => r.id),
        ),
      );
      const [renamed, emptied, ...marked] = refs;
      assert.ok(renamed !== undefined && emptied !== undefined);
      sim.mutate(renamed, { instanceName: "web-server" });
      sim.mutate(emptied, { instanceName: "cio-" });
      const before = total(sim);
      const owned = await d.listOwned?.();
      assert.equal(total(sim) - before, 2, "two pages, no per-VM read");
      assert.deepEqual(
        owned?.map((o) => o.id).sort(),
        [...marked].sort(),
        "every marked VM, no unmarked one",
      );
      const byId = new Map(owned?.map((o) => [o.id, o]));
      for (const id of marked) {
        const o = byId.get(id);
        const vm = sim.vms().find((v) => v.id === id);
        assert.equal(o?.ownerUID, vm?.ownerUID);
        assert.ok(o?.cluster === "c1" || o?.cluster === undefined);
      }
      assert.ok(owned?.some((o) => o.cluster === undefined) && owned.some((o) => o.cluster === "c1"));
    });
  });
}
