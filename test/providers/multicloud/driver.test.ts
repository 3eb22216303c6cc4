import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { ownerMark, type MulticloudOptions } from "../../../src/providers/multicloud/index.ts";
import { capabilitiesOf, type Driver, type MachineRef } from "../../../src/providers/driver.ts";
import { InvalidRequestError, TransientError, UnauthorizedError } from "../../../src/providers/errors.ts";
import { observeUntil, testHttp } from "../harness.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import {
  MC_ALIYUN_TYPES,
  startMulticloudSimulator,
  type MulticloudSimulator,
} from "../../sim/multicloud/index.ts";
import { desired, makeDriver, options, requests, running, template } from "./kit.ts";

let http: HttpClientFactory;
const driverFor = (
  sim: MulticloudSimulator,
  credentials: Record<string, string> = {},
  endpoint = sim.url,
): Driver<MulticloudOptions> => makeDriver(http, sim, credentials, endpoint);

before(() => {
  http = testHttp();
});
after(async () => {
  await http.close();
});

for (const profile of SIM_PROFILES) {
  describe(`multicloud driver (${profile} profile)`, () => {
    let sim: MulticloudSimulator;
    let d: Driver<MulticloudOptions>;
    before(async () => {
      sim = await startMulticloudSimulator({ profile, faults: { transitionMs: 20 } });
      d = driverFor(sim);
    });
    after(async () => {
      await sim.close();
    });
    const createRunning = async (want = desired()): Promise<MachineRef> => {
      const r = await d.create(want);
      const ref = { id: r.id, providerData: { ...want.providerData, ...r.providerData } };
      await observeUntil(d, ref, running, "Running");
      return ref;
    };

    test("status integers: 0 pending and 3 initialising are transitional, 1 is Running", async () => {
      sim.faults.transitionMs = 1000; // slow enough to see the first state on a busy machine
      const { id } = await d.create(desired());
      sim.faults.transitionMs = 20;
      const ref = { id, providerData: {} };
      const first = await d.get(ref);
      assert.equal(first?.phase, "Provisioning");
      assert.equal(first?.transitional, true);
      const m = await observeUntil(d, ref, (o) => o?.phase === "Running");
      assert.equal(m?.providerStatus, "1 (success)");
      assert.ok((m?.addresses.private.length ?? 0) > 0);
      sim.setStatus(id, 8);
      assert.equal((await d.get(ref))?.phase, "Running", "8: in the service pool, still up");
      sim.setStatus(id, 7);
      const failed = await d.get(ref);
      assert.equal(failed?.phase, "Failed");
      assert.match(failed?.message ?? "", /status 7: error/);
    });

    test("an instance whose initialisation times out (4) is Failed; start retries it", async () => {
      sim.failNextInit();
      const { id } = await d.create(desired());
      const ref = { id, providerData: {} };
      const m = await observeUntil(d, ref, (o) => o?.phase === "Failed");
      assert.match(m?.message ?? "", /initialisation timed out/);
      await d.start!(ref);
      await observeUntil(d, ref, running);
    });

    test("a deleted instance is recognised from the document's answers; its private template goes with it", async () => {
      const want = desired();
      const ref = await createRunning(want);
      assert.ok(ref.providerData.privateClusterId);
      const mine = () => sim.clusters().filter((c) => c.name === ownerMark(want.ownerUID, want.clusterID));
      assert.equal(mine().length, 1);
      await d.delete(ref);
      assert.equal(mine().length, 1, "jupiter keeps a template while its instance is being deleted");
      await observeUntil(d, ref, (o) => o === undefined, "gone");
      assert.deepEqual(mine(), [], "the private template is deleted once its instance is gone");
      assert.equal(await d.get(ref), undefined, "a later read of the gone instance stays gone");
      // What the read itself answers now: on strict, the document's example and nothing more.
      const raw = (await (await fetch(`${sim.url}/v1/instance/${ref.id}`)).json()) as {
        code: number;
        msg: string;
      };
      assert.equal(raw.code, 10999);
      if (profile === "strict") assert.equal(raw.msg, "get one instance err");
    });

    test("a 10999 on a living instance is never read as gone: it is observed from the list, or the read fails", async () => {
      const ref = await createRunning();
      sim.faults.failNext = 4; // every attempt of the single read (the list answers)
      assert.equal((await d.get(ref))?.id, ref.id);
      sim.faults.failNext = 8; // the single read and the list both fail
      await assert.rejects(() => d.get(ref), TransientError);
      sim.faults.failNext = 0;
      assert.ok(running(await d.get(ref)));
    });

    test("the plan is reported by its catalogue name although jupiter stores aliyun's own type", async () => {
      const ref = await createRunning();
      assert.equal(sim.vms().find((v) => v.id === ref.id)?.plan, MC_ALIYUN_TYPES["1Core-1GB"]);
      assert.equal((await d.get({ ...ref, options }))?.plan, "1Core-1GB");
      assert.equal((await d.get(ref))?.plan, undefined, "without the object's options no plan is guessed");
    });

    test("a create whose answer is lost (the operator dies) is found by owner; no template outlives it", async () => {
      const want = desired({ ownerUID: randomUUID() });
      const templatesOf = (owner: string) =>
        sim.clusters().filter((c) => c.name === ownerMark(owner, "testcluster"));
      let made: string | undefined;
      sim.faults.onCreated = (id) => {
        made = id;
        throw new Error("the operator died before reading the answer");
      };
      try {
        await assert.rejects(() => d.create(want));
      } finally {
        sim.faults.onCreated = () => undefined;
      }
      assert.ok(made);
      const found = await driverFor(sim).findByOwner!(want.ownerUID, want);
      assert.deepEqual(
        found.map((m) => m.id),
        [made],
      );
      assert.deepEqual(await driverFor(sim).findByOwner!("nobody", desired({ ownerUID: "nobody" })), []);
      // Adopted without the create's bookkeeping: deleting it still leaves no template behind.
      const adopted = { id: made, providerData: {} };
      await d.delete(adopted);
      await observeUntil(d, adopted, (o) => o === undefined, "gone");
      assert.deepEqual(templatesOf(want.ownerUID), []);

      // Dead after the template was made but before the expand: the next lookup clears it.
      const early = desired({ ownerUID: randomUUID() });
      sim.faults.failOperation = "POST /v1/cluster/:id/expand/:id";
      await assert.rejects(() => d.create(early), TransientError);
      assert.equal(templatesOf(early.ownerUID).length, 1);
      assert.deepEqual(await d.findByOwner!(early.ownerUID, early), []);
      assert.deepEqual(templatesOf(early.ownerUID), []);
    });

    test("remote templates: created once, replaced on change, a replaced one in use is retired until free", async () => {
      const tpl = template();
      const first = await d.syncTemplate!(tpl);
      assert.deepEqual(await d.syncTemplate!(tpl), first, "a repeated sync (e.g. after a crash) reuses it");
      const inst = await createRunning(desired({ providerData: first }));
      assert.equal(inst.providerData.privateClusterId, undefined, "expanded the shared template");
      const changed = await d.syncTemplate!({ ...tpl, plan: "4Cores-8GB", providerData: first });
      assert.notEqual(changed.clusterId, first.clusterId);
      assert.equal(changed.retiredClusterIds, first.clusterId, "jupiter refuses while an instance uses it");
      assert.equal(await d.templateExists!(first), true);
      const made = sim.clusters().find((c) => String(c.id) === changed.clusterId);
      assert.equal(made?.instanceType, MC_ALIYUN_TYPES["4Cores-8GB"]);
      await d.delete(inst);
      await observeUntil(d, inst, (o) => o === undefined, "gone");
      await d.deleteTemplate!(changed);
      assert.equal(await d.templateExists!(first), false, "the retired template went with the template");
      assert.equal(await d.templateExists!(changed), false);
      await d.deleteTemplate!(changed);
    });

    test("a vanished remote template is seen missing and recreated", async () => {
      const tpl = template();
      const first = await d.syncTemplate!(tpl);
      sim.dropCluster(Number(first.clusterId));
      assert.equal(await d.templateExists!(first), false);
      const again = await d.syncTemplate!({ ...tpl, providerData: first });
      assert.equal(await d.templateExists!(again), true);
      await d.deleteTemplate!(again);
    });

    test("instances of a shared template: told apart by their correlation id, or a clear refusal", async () => {
      const tpl = await d.syncTemplate!(template());
      const a = desired({ providerData: tpl });
      const b = desired({ providerData: tpl });
      const ia = await createRunning(a);
      const ib = await createRunning(b);
      const fresh = driverFor(sim);
      if (profile === "strict") {
        assert.deepEqual(
          (await fresh.findByOwner!(a.ownerUID, a)).map((m) => m.id),
          [ia.id],
        );
        assert.deepEqual(
          (await fresh.findByOwner!(b.ownerUID, b)).map((m) => m.id),
          [ib.id],
        );
        assert.deepEqual(await fresh.findByOwner!("nobody", desired({ providerData: tpl })), []);
      } else {
        // jupiter's source appends the host's logs to every log read: ownership cannot be
        // read from it, and neither "mine" nor "not mine" is guessed.
        await assert.rejects(
          () => fresh.findByOwner!(a.ownerUID, a),
          (e: unknown) => e instanceof InvalidRequestError && e.reason === "OwnershipUnknown",
        );
      }
    });

    test("the spec is checked against the catalogues with the valid choices named; a stop is refused up front", async () => {
      await assert.rejects(
        () => d.create(desired({ options: { ...options, dataDiskNum: 4, zone: "nowhere-9" } })),
        (e: unknown) => e instanceof InvalidRequestError && /no zone "nowhere-9"/.test(e.message),
      );
      await assert.rejects(
        () => d.validate(desired({ powerState: "Stopped" })),
        (e: unknown) => e instanceof InvalidRequestError && /cannot stop/.test(e.message),
      );
      await assert.rejects(
        () => d.validate(desired({ options: { ...options, cloud: "gcp" } })),
        (e: unknown) => e instanceof InvalidRequestError && /aliyun, aws, openstack/.test(e.message),
      );
    });

    test("ids are checked before anything is sent; a path the endpoint does not route is an error, never 'gone'", async () => {
      const sent = requests(sim);
      const bad = (id: string) => (e: unknown) =>
        e instanceof InvalidRequestError &&
        e.reason === "InvalidID" &&
        e.message.includes(JSON.stringify(id));
      await assert.rejects(() => d.get({ id: "i-a,i-b", providerData: {} }), bad("i-a,i-b"));
      await assert.rejects(() => d.delete({ id: "../cluster/1", providerData: {} }), bad("../cluster/1"));
      await assert.rejects(() => d.start!({ id: "i-x?y=1", providerData: {} }), bad("i-x?y=1"));
      assert.equal(requests(sim), sent, "nothing was sent");
      await assert.rejects(
        () => d.get({ id: "i-nosuchinstance", providerData: { privateClusterId: "1/2" } }),
        bad("1/2"),
      );
      const lost = driverFor(sim, {}, `${sim.url}/nowhere`);
      const unrouted = (e: unknown) => e instanceof InvalidRequestError && e.reason === "UnknownRoute";
      await assert.rejects(() => lost.get({ id: "i-000000000001", providerData: {} }), unrouted);
      await assert.rejects(() => lost.delete({ id: "i-000000000001", providerData: {} }), unrouted);
    });

    test("no setTags, stop, reboot, resize or rebuild: none is a capability (the reconciler reports them)", () => {
      assert.equal("setTags" in d, false);
      assert.deepEqual([...capabilitiesOf(d)].sort(), ["findByOwner", "remoteTemplates", "start"]);
    });
  });
}

describe("multicloud driver: route spellings and credentials", () => {
  test("the source code's route spellings are found and remembered", async () => {
    const src = await startMulticloudSimulator({
      faults: { transitionMs: 10 },
      routes: "source",
      profile: "strict",
    });
    try {
      const sd = driverFor(src);
      src.failNextInit();
      const { id } = await sd.create(desired());
      const ref = { id, providerData: {} };
      await observeUntil(sd, ref, (o) => o?.phase === "Failed");
      await sd.start!(ref);
      await sd.start!(ref);
      assert.equal(src.requestCounts.get("GET /v1/start/:id"), 1, "the document's spelling was tried once");
      assert.equal(src.requestCounts.get("POST /v1/instance/start/:id"), 2);
    } finally {
      await src.close();
    }
  });

  test("with a token configured, it is sent as a Bearer token; a wrong one is Unauthorized", async () => {
    const secured = await startMulticloudSimulator({ token: "mc-token-123456" });
    try {
      assert.deepEqual(
        await driverFor(secured, { token: "mc-token-123456" }).findByOwner!("x", desired()),
        [],
      );
      await assert.rejects(
        () => driverFor(secured, { token: "wrong-token" }).findByOwner!("x", desired()),
        (e: unknown) => e instanceof UnauthorizedError && !e.message.includes("wrong-token"),
      );
    } finally {
      await secured.close();
    }
  });
});
