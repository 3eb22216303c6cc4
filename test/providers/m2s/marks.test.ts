/**
 * The m2s ownership mark with the cluster identity, the orphan listing built on it, and the
 * document's plan prices, on both simulator profiles (strict: list items without tags).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import {
  CLUSTER_TAG_PREFIX,
  definition,
  OWNER_TAG_PREFIX,
  vmName,
  type M2sOptions,
} from "../../../src/providers/m2s/index.ts";
import type { DesiredMachine, Driver } from "../../../src/providers/driver.ts";
import { captureLogs, desiredMachine, observeUntil, testHttp } from "../harness.ts";
import { startM2sSimulator, type M2sSimulator } from "../../sim/m2s/index.ts";
import { SIM_PROFILES, type SimProfile } from "../../sim/common.ts";
import { SIMULATORS } from "../../sim/all.ts";

const desired = (over: Partial<DesiredMachine<M2sOptions>> = {}): DesiredMachine<M2sOptions> =>
  desiredMachine(SIMULATORS.m2s.spec, { resizeReboot: true }, { clusterID: "c1", ...over });

for (const profile of SIM_PROFILES) describeOn(profile);

function describeOn(profile: SimProfile): void {
  let sim: M2sSimulator;
  let http: HttpClientFactory;
  const { logger } = captureLogs();
  const driver = (): Driver<M2sOptions> =>
    definition.create({
      credentials: sim.credentials,
      secretName: "ns/m2s",
      endpoint: sim.url,
      http,
      logger,
    });
  const auth = () => ({ authorization: `Bearer ${sim.credentials.apiKey ?? ""}` });
  const calls = (): Record<string, number> => Object.fromEntries(sim.requestCounts);
  const delta = (before: Record<string, number>): Record<string, number> =>
    Object.fromEntries(
      [...sim.requestCounts].map(([op, n]) => [op, n - (before[op] ?? 0)] as const).filter(([, n]) => n > 0),
    );

  /** The VM's tags as the API stores them (the driver hides its own). */
  async function rawTags(id: string): Promise<string[]> {
    const res = await fetch(`${sim.url}/instances/${id}`, { headers: auth() });
    return ((await res.json()) as { data: { tags: string[] } }).data.tags;
  }
  /** A VM made behind the driver's back: another tool, or an older operator. */
  async function rawCreate(name: string, tags: string[]): Promise<string> {
    const res = await fetch(`${sim.url}/instances`, {
      method: "POST",
      headers: { ...auth(), "content-type": "application/json" },
      body: JSON.stringify({ name, plan: "starter", region: "fr-par-1", image: "debian-12", tags }),
    });
    assert.equal(res.status, 201);
    return ((await res.json()) as { data: { id: string } }).data.id;
  }

  describe(`m2s driver: cluster in the mark, listOwned, price (${profile} profile)`, () => {
    before(async () => {
      sim = await startM2sSimulator({ profile, faults: { transitionMs: 20 } });
      http = testHttp(logger);
    });
    after(async () => {
      await http.close();
      await sim.close();
    });

    test("the cluster tag goes beside the owner tag, is observed, hidden from tags and kept by tag updates", async () => {
      const d = driver();
      const { id } = await d.create(desired({ ownerUID: "uid-c1", tags: ["web"] }));
      const ref = { id, providerData: {} };
      assert.deepEqual((await rawTags(id)).sort(), ["cio-cluster:c1", "cio-owner:uid-c1", "web"]);
      const m = await observeUntil(d, ref, (x) => x?.providerStatus === "running");
      assert.equal(m?.ownerUID, "uid-c1");
      assert.equal(m?.ownerCluster, "c1");
      assert.deepEqual(m?.tags, ["web"]);
      const [found] = await d.findByOwner!("uid-c1", desired({ ownerUID: "uid-c1" }));
      assert.equal(found?.ownerCluster, "c1");

      const before = calls();
      await d.setTags!(ref, ["a", "b"], "uid-c1");
      assert.deepEqual(
        delta(before),
        { "GET /v1/instances/:id": 1, "PATCH /v1/instances/:id": 1 },
        "one read of the marks, one PATCH",
      );
      assert.deepEqual((await rawTags(id)).sort(), ["a", "b", "cio-cluster:c1", "cio-owner:uid-c1"]);
      const after = await d.get(ref);
      assert.deepEqual(after?.tags, ["a", "b"]);
      assert.equal(after?.ownerCluster, "c1");
    });

    test("without a cluster identity the mark is the owner tag alone", async () => {
      const d = driver();
      const { id } = await d.create(desired({ ownerUID: "uid-nocluster", clusterID: "" }));
      assert.deepEqual(await rawTags(id), ["cio-owner:uid-nocluster"]);
      const m = await d.get({ id, providerData: {} });
      assert.equal(m?.ownerUID, "uid-nocluster");
      assert.equal(m?.ownerCluster, undefined);
    });

    test("a VM marked before marks carried a cluster is still found, adopted, and left without one", async () => {
      const d = driver();
      const old = desired({ ownerUID: "uid-old", name: "old" });
      const id = await rawCreate(vmName(old), [`${OWNER_TAG_PREFIX}uid-old`, "keep"]);
      const found = await d.findByOwner!("uid-old", old);
      assert.deepEqual(
        found.map((m) => [m.id, m.ownerUID, m.ownerCluster]),
        [[id, "uid-old", undefined]],
      );
      await d.setTags!({ id, providerData: {} }, ["keep", "new"], "uid-old");
      assert.deepEqual((await rawTags(id)).sort(), ["cio-owner:uid-old", "keep", "new"]);
    });

    test("listOwned: every marked VM with its owner and cluster, never an unmarked one, one read per marked name at most", async () => {
      const d = driver();
      const others = new Set((await d.listOwned!()).map((o) => o.id));
      const a = (await d.create(desired({ ownerUID: "uid-la", name: "la", clusterID: "c1" }))).id;
      const b = (await d.create(desired({ ownerUID: "uid-lb", name: "lb", clusterID: "c2" }))).id;
      const c = (await d.create(desired({ ownerUID: "uid-lc", name: "lc", clusterID: "" }))).id;
      // Not ours: a name that looks marked but no tag, an ordinary one, one with tags of its own.
      await rawCreate("backup-20240115", []);
      await rawCreate("web-prod-01", ["production"]);
      await rawCreate("db-deadbeef", ["cio-ownerless"]);
      // Ours, but named before the mark existed: nothing in a documented list item shows it.
      const legacy = await rawCreate("ns-legacy", [
        `${OWNER_TAG_PREFIX}uid-legacy`,
        `${CLUSTER_TAG_PREFIX}c1`,
      ]);

      const before = calls();
      const listed = (await d.listOwned!()).filter((o) => !others.has(o.id));
      const byId = new Map(listed.map((o) => [o.id, o]));
      assert.deepEqual(byId.get(a), { id: a, ownerUID: "uid-la", cluster: "c1" });
      assert.deepEqual(byId.get(b), { id: b, ownerUID: "uid-lb", cluster: "c2" });
      assert.deepEqual(byId.get(c), { id: c, ownerUID: "uid-lc", cluster: undefined });
      const reads = delta(before)["GET /v1/instances/:id"] ?? 0;
      assert.equal(delta(before)["GET /v1/instances"], 1, "one page");
      if (profile === "strict") {
        assert.equal(listed.length, 3, JSON.stringify(listed));
        assert.ok(!byId.has(legacy));
        // The 3 new marked names, the 2 that only look marked, and the earlier tests' marked names.
        assert.equal(reads, 5 + others.size, "a read per marked-looking name, none for the others");
      } else {
        // List items carry tags here: they decide, the pre-mark name too, with no read at all.
        assert.deepEqual(byId.get(legacy), { id: legacy, ownerUID: "uid-legacy", cluster: "c1" });
        assert.equal(listed.length, 4, JSON.stringify(listed));
        assert.equal(reads, 0);
      }
    });

    test("price: the document's monthly price in euros for each plan, nothing for an unknown one, no call", async () => {
      const d = driver();
      const before = calls();
      const prices: Record<string, string> = {
        starter: "5",
        business: "15",
        performance: "30",
        enterprise: "60",
      };
      for (const [plan, amount] of Object.entries(prices))
        assert.deepEqual(await d.price!(desired({ plan })), { amount, currency: "EUR", period: "month" });
      for (const plan of ["huge", "toString", "constructor"])
        assert.equal(await d.price!(desired({ plan })), undefined, plan);
      assert.equal(await d.price!(desired({ plan: undefined })), undefined);
      assert.deepEqual(delta(before), {});
    });
  });
}
