/**
 * The ownership mark in the scalet name (owner UID and cluster identity), the orphan listing
 * built on it, unknown statuses and the absent price — on both simulator profiles.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { markedName, markOf } from "../../../src/providers/vscale/index.ts";
import { SIMULATORS } from "../../sim/all.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { observeUntil } from "../harness.ts";
import { settled, vscaleWorld } from "./world.ts";

test("the mark: UID and cluster after the readable part, read back; a name without it is unmarked", () => {
  const uid = randomUUID();
  const name = markedName("team-a", "web", uid, "k8sprod1");
  assert.equal(name, `team-a-web--cio-${uid}--k8sprod1`);
  assert.deepEqual(markOf(name), { ownerUID: uid, cluster: "k8sprod1" });
  assert.deepEqual(markOf(markedName("team-a", "web", uid, "")), { ownerUID: uid }, "no cluster known");
  assert.deepEqual(markOf(`team-a-web--cio-${uid}`), { ownerUID: uid }, "marked before clusters");
  assert.deepEqual(markOf(`a--cio-b--c--cio-${uid}--x1`), { ownerUID: uid, cluster: "x1" }, "the last mark");
  assert.equal(markOf("My First Server"), undefined);
  assert.equal(markOf("web--cio-"), undefined, "no UID: not a mark");
  const long = markedName("n".repeat(63), "m".repeat(253), uid, "abcdefghijklmnop");
  assert.ok(long.length <= 120, `${String(long.length)} characters`);
  assert.deepEqual(markOf(long), { ownerUID: uid, cluster: "abcdefghijklmnop" });
});

for (const profile of SIM_PROFILES) {
  describe(`vscale ownership marks and orphan listing (${profile} profile)`, () => {
    const w = vscaleWorld(profile);

    /** A scalet made by hand in the panel or by another tool: the name is all the user's. */
    async function handMade(name: string): Promise<string> {
      const res = await fetch(`${w.sim.url}/scalets`, {
        method: "POST",
        headers: { "x-token": w.sim.credentials.token ?? "", "content-type": "application/json" },
        body: JSON.stringify({ ...spec(), name, keys: [], do_start: false }),
      });
      assert.equal(res.status, 201);
      return String(((await res.json()) as { ctid: number }).ctid);
    }
    const spec = () => {
      const s = SIMULATORS.vscale.spec;
      return { make_from: s.image, rplan: s.plan, location: s.region };
    };

    test("the cluster identity is in the mark and observed; findByOwner reports it", async () => {
      const desired = w.desired({ clusterID: "c0ffee42" });
      const { id } = await w.d.create(desired);
      const m = await observeUntil(w.d, { id, providerData: {} }, settled("started"));
      assert.equal(m?.ownerUID, desired.ownerUID);
      assert.equal(m?.ownerCluster, "c0ffee42");
      assert.equal(m?.name, `ns-web--cio-${desired.ownerUID}--c0ffee42`);
      const found = await w.d.findByOwner!(desired.ownerUID, desired);
      assert.deepEqual(
        found.map((f) => [f.id, f.ownerCluster]),
        [[id, "c0ffee42"]],
      );
      assert.equal(w.sim.vms().find((v) => v.id === id)?.ownerUID, desired.ownerUID);
    });

    test("a scalet marked before marks carried a cluster is still found and adopted, without a cluster", async () => {
      const desired = w.desired({ clusterID: "newcluster" });
      const id = await handMade(`ns-web--cio-${desired.ownerUID}`);
      const found = await w.driver().findByOwner!(desired.ownerUID, desired);
      assert.deepEqual(
        found.map((f) => f.id),
        [id],
      );
      assert.equal(found[0]?.ownerUID, desired.ownerUID);
      assert.equal(found[0]?.ownerCluster, undefined);
      const m = await w.d.get({ id, providerData: {} });
      assert.equal(m?.ownerUID, desired.ownerUID);
      assert.equal(m?.ownerCluster, undefined);
    });

    test("findByOwner goes by UID alone: a changed cluster identity never hides a scalet (no second create)", async () => {
      const desired = w.desired({ clusterID: "before" });
      const { id } = await w.d.create(desired);
      const after = { ...desired, clusterID: "after" };
      const found = await w.driver().findByOwner!(desired.ownerUID, after);
      assert.deepEqual(
        found.map((f) => [f.id, f.ownerCluster]),
        [[id, "before"]],
      );
    });

    test("listOwned: every marked scalet with its UID and cluster, never an unmarked one, in one request", async () => {
      // Kubernetes UIDs, as the API server issues them.
      const withCluster = w.desired({ clusterID: "sweep1", ownerUID: randomUUID() });
      const noCluster = w.desired({ clusterID: "", ownerUID: randomUUID() });
      const a = (await w.d.create(withCluster)).id;
      const b = (await w.d.create(noCluster)).id;
      const old = w.desired({ ownerUID: randomUUID() });
      const c = await handMade(`legacy--cio-${old.ownerUID}`);
      const strangers = await Promise.all(
        [
          "My First Server",
          "Icy-Mysterious",
          "web--cio-",
          "ns-web-cio-x",
          "backup--cio-old",
          "db--cio-not-a-uid--c1",
        ].map(handMade),
      );
      const before = w.calls();
      const owned = (await w.d.listOwned?.()) ?? assert.fail("vscale lists owned scalets");
      assert.equal(w.calls() - before, 1, "GET /scalets answers the whole account at once");
      const byId = new Map(owned.map((o) => [o.id, o]));
      assert.deepEqual(byId.get(a), { id: a, ownerUID: withCluster.ownerUID, cluster: "sweep1" });
      assert.deepEqual(byId.get(b), { id: b, ownerUID: noCluster.ownerUID, cluster: undefined });
      assert.deepEqual(byId.get(c), { id: c, ownerUID: old.ownerUID, cluster: undefined });
      for (const s of strangers) assert.equal(byId.has(s), false, `unmarked scalet ${s} listed`);
      const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
      const marked = w.sim.vms().filter((v) => uuid.test(v.ownerUID ?? ""));
      assert.equal(owned.length, marked.length, "every scalet the operator marked");
    });

    test("an unknown status is waited on and flagged; while the scalet is deleted it is not", async () => {
      const { id } = await w.d.create(w.desired());
      const ref = { id, providerData: {} };
      await observeUntil(w.d, ref, settled("started"));
      w.sim.mutate(id, { status: "rescuing" });
      const m = await w.d.get(ref);
      assert.equal(m?.phase, "Provisioning");
      assert.equal(m?.transitional, true);
      assert.equal(m?.unknownStatus, true);
      assert.match(m?.message ?? "", /"rescuing"/);
      // The deletion's task must outlast the read below, however slow this machine is.
      const transitionMs = w.sim.faults.transitionMs;
      w.sim.faults.transitionMs = 60_000;
      await w.d.delete(ref);
      w.sim.faults.transitionMs = transitionMs;
      const deleting = await w.d.get(ref);
      assert.equal(deleting?.phase, "Deleting");
      assert.equal(deleting?.unknownStatus, undefined, "a deletion never waits on an unknown status");
    });

    test("no price: the document gives none for an rplan, so the driver offers none", () => {
      assert.equal("price" in w.d, false);
    });
  });
}
