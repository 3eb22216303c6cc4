/**
 * The ownership mark with the cluster's identity, the orphan listing built on it and the page
 * cap of every list, on both simulator profiles: the strict one lists only `id, domain,
 * status, pricelist, datacenter, ip` and does not page; the default one adds the hostname and
 * pages with `p_elems`.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { DEFAULT_MAX_PAGES, type OwnedMachine } from "../../../src/providers/driver.ts";
import {
  InvalidRequestError,
  ProviderLimitError,
  TransientError,
  UnsupportedError,
} from "../../../src/providers/errors.ts";
import { observeUntil, testHttp } from "../harness.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { startZomroSimulator, type ZomroSimulator } from "../../sim/zomro/index.ts";
import { orderByHand, totalRequests as total, zomroDesired as desired, zomroDriver } from "./kit.ts";

let http: HttpClientFactory;
before(() => {
  http = testHttp();
});
after(async () => {
  await http.close();
});

const byId = (a: OwnedMachine, b: OwnedMachine): number => a.id.localeCompare(b.id);

for (const profile of SIM_PROFILES) {
  describe(`zomro ownership marks and orphan listing (${profile} profile)`, () => {
    let sim: ZomroSimulator;
    before(async () => {
      sim = await startZomroSimulator({ profile, faults: { transitionMs: 10 } });
    });
    after(async () => {
      await sim.close();
    });

    test("the mark is cio-<uid>.<cluster> in every name field the order form has; get and findByOwner report both", async () => {
      const d = zomroDriver(sim, http);
      const want = desired({ clusterID: "k8sprod1" });
      await d.validate(want);
      const { id } = await d.create(want);
      const mark = `cio-${want.ownerUID}.k8sprod1`;
      const raw = sim.service(id);
      assert.equal(raw?.domain, mark, "the domain carries the whole mark");
      assert.equal(
        raw.hostname,
        profile === "default" ? mark : "",
        "and the hostname where the form has one",
      );
      const seen = await d.get({ id, providerData: {} });
      assert.equal(seen?.ownerUID, want.ownerUID);
      assert.equal(seen.ownerCluster, "k8sprod1");
      const found = await d.findByOwner!(want.ownerUID, want);
      assert.deepEqual(
        found.map((m) => [m.id, m.ownerUID, m.ownerCluster]),
        [[id, want.ownerUID, "k8sprod1"]],
      );
    });

    test("a cluster without identity marks cio-<uid> as before", async () => {
      const d = zomroDriver(sim, http);
      const want = desired({ clusterID: "" });
      const { id } = await d.create(want);
      assert.equal(sim.service(id)?.domain, `cio-${want.ownerUID}`);
      const seen = await d.get({ id, providerData: {} });
      assert.equal(seen?.ownerUID, want.ownerUID);
      assert.equal(seen.ownerCluster, undefined);
    });

    test("a VM marked before marks carried a cluster is found by its owner and adopted", async () => {
      const d = zomroDriver(sim, http);
      const want = desired({ clusterID: "k8sprod1" });
      const id = await orderByHand(sim, { domain: `cio-${want.ownerUID}` });
      const found = await d.findByOwner!(want.ownerUID, want);
      assert.deepEqual(
        found.map((m) => [m.id, m.ownerUID, m.ownerCluster]),
        [[id, want.ownerUID, undefined]],
      );
    });

    test("a mark no host name can hold is refused before anything is sent", async () => {
      const d = zomroDriver(sim, http);
      const before = total(sim);
      for (const bad of [desired({ clusterID: "Prod_1" }), desired({ ownerUID: "x".repeat(60) })]) {
        for (const call of [() => d.validate(bad), () => d.create(bad)])
          await assert.rejects(
            call,
            (e: unknown) => e instanceof InvalidRequestError && e.reason === "InvalidOwnerMark" && e.terminal,
          );
      }
      assert.equal(total(sim), before);
    });

    test("listOwned: every marked VM with owner and cluster, from one list call; unmarked and deleted ones never", async () => {
      const d = zomroDriver(sim, http);
      const withCluster = desired({ clusterID: "k8sprod1" });
      const legacy = desired({ clusterID: "" });
      const a = (await d.create(withCluster)).id;
      const b = (await d.create(legacy)).id;
      const unmarked = await orderByHand(sim, {});
      const gone = await d.create(desired());
      await d.delete({ id: gone.id, providerData: {} });
      await observeUntil(d, { id: gone.id, providerData: {} }, (m) => m === undefined, "deleted");
      await d.listOwned?.(); // a session and nothing else cached
      const lists = sim.requestCounts.get("instances") ?? 0;
      const before = total(sim);
      const owned = (await d.listOwned?.()) ?? assert.fail("zomro lists owned VMs");
      assert.equal(total(sim) - before, 1, "one list call, no read per VM");
      assert.equal((sim.requestCounts.get("instances") ?? 0) - lists, 1);
      const ids = new Set(owned.map((o) => o.id));
      assert.ok(!ids.has(unmarked), "an unmarked VM is never listed");
      assert.ok(!ids.has(gone.id), "a deleted VM is not listed (the strict list still shows it)");
      assert.deepEqual(
        owned.filter((o) => o.id === a || o.id === b).sort(byId),
        [
          { id: a, ownerUID: withCluster.ownerUID, cluster: "k8sprod1" },
          { id: b, ownerUID: legacy.ownerUID, cluster: undefined },
        ].sort(byId),
      );
      const live = sim.vms();
      for (const o of owned)
        assert.equal(
          live.find((v) => v.id === o.id)?.ownerUID,
          o.ownerUID,
          "each one as the simulator holds it",
        );
      assert.equal(owned.length, live.filter((v) => v.ownerUID !== undefined).length, "and all of them");
    });
  });

  describe(`zomro lists have bounds (${profile} profile)`, () => {
    test("a list that never ends stops at the page cap (--provider-max-pages, default 100) with TooManyPages", async () => {
      const sim = await startZomroSimulator({ profile, endlessList: "fresh", faults: { transitionMs: 10 } });
      try {
        const tooMany = (e: unknown) => e instanceof ProviderLimitError && e.reason === "TooManyPages";
        const capped = zomroDriver(sim, http, sim.credentials, { maxPages: 3 });
        await assert.rejects(() => capped.findByOwner!("x", desired()), tooMany);
        assert.equal(sim.requestCounts.get("instances"), 3);
        await assert.rejects(() => capped.listOwned?.() ?? Promise.resolve(), tooMany);
        assert.equal(sim.requestCounts.get("instances"), 6);
        const unset = zomroDriver(sim, http);
        await assert.rejects(() => unset.findByOwner!("x", desired()), tooMany);
        assert.equal(sim.requestCounts.get("instances"), 6 + DEFAULT_MAX_PAGES);
      } finally {
        await sim.close();
      }
    });

    test("a page that repeats is read once more, never looped on, and no partial list is returned", async () => {
      const sim = await startZomroSimulator({ profile, endlessList: "repeat", faults: { transitionMs: 10 } });
      try {
        const d = zomroDriver(sim, http);
        await assert.rejects(
          () => d.findByOwner!("x", desired()),
          (e: unknown) => e instanceof TransientError && /repeats earlier pages/.test(e.message),
        );
        assert.equal(sim.requestCounts.get("instances"), 2);
      } finally {
        await sim.close();
      }
    });
  });

  describe(`zomro orphan listing where "instances" does not exist (${profile} profile)`, () => {
    test("listOwned reads the vds list instead, and remembers that instances is missing", async () => {
      const sim = await startZomroSimulator({
        profile,
        absentFunctions: ["instances"],
        faults: { transitionMs: 10 },
      });
      try {
        const d = zomroDriver(sim, http);
        const want = desired({ clusterID: "k8sprod1" });
        const { id } = await d.create(want);
        for (let i = 0; i < 2; i++)
          assert.deepEqual(await d.listOwned?.(), [{ id, ownerUID: want.ownerUID, cluster: "k8sprod1" }]);
        assert.equal(sim.requestCounts.get("instances"), 1, "asked once");
        assert.equal(sim.requestCounts.get("vds"), 2);
      } finally {
        await sim.close();
      }
    });

    test("with neither list the provider is not sweepable: a terminal Unsupported", async () => {
      const sim = await startZomroSimulator({
        profile,
        absentFunctions: ["instances", "vds"],
        faults: { transitionMs: 10 },
      });
      try {
        const d = zomroDriver(sim, http);
        await assert.rejects(
          () => d.listOwned?.() ?? Promise.resolve(),
          (e: unknown) => e instanceof UnsupportedError && e.terminal && /instances.*vds/.test(e.message),
        );
      } finally {
        await sim.close();
      }
    });
  });
}
