/**
 * The ownership mark with the cluster identity, marks made before it, the orphan listing and
 * the status table, on both simulator profiles.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { ownerMark, type MulticloudOptions } from "../../../src/providers/multicloud/index.ts";
import type { Driver, MachineRef } from "../../../src/providers/driver.ts";
import { InvalidRequestError } from "../../../src/providers/errors.ts";
import { observeUntil } from "../harness.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { startMulticloudSimulator, type MulticloudSimulator } from "../../sim/multicloud/index.ts";
import { desired, makeDriver, running, template, unthrottledHttp } from "./kit.ts";

let http: HttpClientFactory;
before(() => {
  http = unthrottledHttp();
});
after(async () => {
  await http.close();
});

const CLUSTER = "c0ffee42";

/** Raw calls to jupiter, as another tenant of the account (or a person) makes them. */
async function jupiter(sim: MulticloudSimulator, method: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${sim.url}${path}`, { method, ...init });
  return ((await res.json()) as { content: unknown }).content;
}

/** A template nobody in Kubernetes made, expanded to `n` instances. */
async function foreignInstances(sim: MulticloudSimulator, name: string, n: number): Promise<string[]> {
  const body = JSON.stringify({
    Name: name,
    Provider: "aliyun",
    InstanceType: "1Core-1GB",
    ImageId: "centos7u2_64_40G_cloudinit_20160728.raw",
    Zone: { RegionName: "cn-beijing", ZoneName: "cn-beijing-c" },
    SystemDiskCategory: "cloud_efficiency",
    DataDiskCategory: "cloud_efficiency",
    DataDiskNum: 1,
    DataDiskSize: 100,
  });
  const headers = { "content-type": "application/json", "x-correlation-id": "1-1" };
  const id = await jupiter(sim, "POST", "/v1/cluster", { body, headers });
  return (await jupiter(sim, "POST", `/v1/cluster/${String(id)}/expand/${String(n)}`, {
    body,
    headers,
  })) as string[];
}

for (const profile of SIM_PROFILES) {
  describe(`multicloud ownership marks (${profile} profile)`, () => {
    let sim: MulticloudSimulator;
    let d: Driver<MulticloudOptions>;
    before(async () => {
      sim = await startMulticloudSimulator({ profile, faults: { transitionMs: 20 } });
      d = makeDriver(http, sim);
    });
    after(async () => {
      await sim.close();
    });
    const create = async (want = desired()): Promise<MachineRef> => {
      const r = await d.create(want);
      return { id: r.id, providerData: { ...want.providerData, ...r.providerData } };
    };
    /** Running, with its addresses: what jupiter's log reads answer no longer changes. */
    const createRunning = async (want = desired()): Promise<MachineRef> => {
      const ref = await create(want);
      await observeUntil(d, ref, running, "Running");
      return ref;
    };

    test("the mark carries the cluster: template name and correlation id; get and findByOwner report it", async () => {
      const want = desired({ ownerUID: randomUUID(), clusterID: CLUSTER });
      const ref = await create(want);
      const mark = `cio-${want.ownerUID}.${CLUSTER}`;
      assert.equal(ownerMark(want.ownerUID, CLUSTER), mark);
      assert.ok(
        sim.clusters().some((c) => c.name === mark),
        "the private template is named by the mark",
      );
      if (profile === "strict") {
        const logs = (corr: string) => jupiter(sim, "GET", `/v1/instance/log/${corr}/${ref.id}`);
        assert.notEqual(await logs(mark), "", "the expand's logs are kept under the mark");
        assert.equal(await logs(`cio-${want.ownerUID}`), "", "and under no other correlation id");
      }
      // A fresh driver reads the mark from the instance, not from the create's bookkeeping.
      const seen = await observeUntil(makeDriver(http, sim), { id: ref.id, providerData: {} }, running);
      assert.equal(seen?.ownerUID, want.ownerUID);
      assert.equal(seen?.ownerCluster, CLUSTER);
      const found = await makeDriver(http, sim).findByOwner!(want.ownerUID, want);
      assert.deepEqual(
        found.map((m) => [m.id, m.ownerUID, m.ownerCluster]),
        [[ref.id, want.ownerUID, CLUSTER]],
      );
    });

    test("VMs marked before marks carried a cluster are found and adopted as before", async () => {
      const old = desired({ ownerUID: randomUUID(), clusterID: "" });
      const ref = await create(old);
      assert.ok(
        sim.clusters().some((c) => c.name === `cio-${old.ownerUID}`),
        "the old form of the mark",
      );
      const now = { ...old, clusterID: CLUSTER };
      const found = await makeDriver(http, sim).findByOwner!(old.ownerUID, now);
      assert.deepEqual(
        found.map((m) => m.id),
        [ref.id],
      );
      assert.equal(found[0]?.ownerUID, old.ownerUID);
      assert.equal(found[0]?.ownerCluster, undefined, "no cluster in an old mark");
    });

    test("instances of a shared template: the mark with the cluster and the old one are both told", async () => {
      const tpl = await d.syncTemplate!(template());
      const marked = desired({ providerData: tpl, clusterID: CLUSTER });
      const unmarked = desired({ providerData: tpl, clusterID: "" });
      const a = await createRunning(marked);
      const b = await createRunning(unmarked);
      await createRunning(desired({ providerData: tpl, clusterID: CLUSTER })); // another object's
      const fresh = makeDriver(http, sim);
      if (profile === "strict") {
        const of = async (want: typeof marked) =>
          (await fresh.findByOwner!(want.ownerUID, { ...want, clusterID: CLUSTER })).map((m) => [
            m.id,
            m.ownerCluster,
          ]);
        assert.deepEqual(await of(marked), [[a.id, CLUSTER]]);
        assert.deepEqual(await of(unmarked), [[b.id, undefined]]);
      } else {
        // jupiter's source answers logs under any correlation id: still no guess.
        await assert.rejects(
          () => fresh.findByOwner!(marked.ownerUID, marked),
          (e: unknown) => e instanceof InvalidRequestError && e.reason === "OwnershipUnknown",
        );
      }
    });

    test("a cluster identity that cannot stand in a mark is refused before anything is sent", async () => {
      const sent = sim.arrived();
      await assert.rejects(
        () => d.create(desired({ clusterID: "a.b" })),
        (e: unknown) => e instanceof InvalidRequestError && e.reason === "InvalidSpec",
      );
      assert.equal(sim.arrived(), sent);
    });

    test("a status in no table is reported as unknown and waited on, never as an error", async () => {
      const ref = await create();
      sim.setStatus(ref.id, 42);
      const m = await d.get(ref);
      assert.equal(m?.providerStatus, "42 (unknown)");
      assert.equal(m?.unknownStatus, true);
      assert.equal(m?.transitional, true);
      assert.match(m?.message ?? "", /"42"/);
      sim.setStatus(ref.id, 1);
      assert.equal((await d.get(ref))?.unknownStatus, undefined);
    });

    test("no price: jupiter's catalogue names instance types without one", () => {
      assert.equal("price" in d, false);
      assert.equal("listOwned" in d, true);
    });
  });

  describe(`multicloud orphan listing (${profile} profile)`, () => {
    test("every instance whose private template is marked, in one call; nothing else", async () => {
      const sim = await startMulticloudSimulator({ profile, faults: { transitionMs: 20 } });
      try {
        const d = makeDriver(http, sim);
        const create = async (want = desired()) => (await d.create(want)).id;
        const withCluster = desired({ ownerUID: randomUUID(), clusterID: CLUSTER });
        const oldMark = desired({ ownerUID: randomUUID(), clusterID: "" });
        const expected = [
          { id: await create(withCluster), ownerUID: withCluster.ownerUID, cluster: CLUSTER },
          { id: await create(oldMark), ownerUID: oldMark.ownerUID, cluster: undefined },
        ];
        // Not listed: a shared template's instance (its owner is only in jupiter's logs), one
        // being deleted, an old mark that is not a UID (a twin's name has the same shape), and
        // 250 instances of templates nobody in Kubernetes made.
        const tpl = await d.syncTemplate!(template());
        await create(desired({ providerData: tpl, clusterID: CLUSTER }));
        const deleting = await create(desired({ ownerUID: randomUUID() }));
        sim.setStatus(deleting, 6);
        await create(desired({ ownerUID: "not-a-uuid", clusterID: "" }));
        await foreignInstances(sim, "web-pool", 100);
        await foreignInstances(sim, "cio-hand-made", 100);
        await foreignInstances(sim, `cio-${randomUUID()}-0123456789`, 50);
        assert.ok(sim.vms().length > 250);

        const sent = sim.arrived();
        const owned = await makeDriver(http, sim).listOwned!();
        assert.equal(sim.arrived() - sent, 1, "one call, whatever the account holds");
        const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
        assert.deepEqual([...owned].sort(byId), expected.sort(byId));
      } finally {
        await sim.close();
      }
    });
  });
}
