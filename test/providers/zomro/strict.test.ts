/**
 * The zomro bullets of issue 17 and the tenant-isolation rules, each against the API that does
 * only what the document shows (the strict simulator) unless a bullet needs a default-only
 * function: tariffs from the order form, plans compared by id, every not-found spelling taken
 * as absent, function names per call, secrets kept out of error texts, ids checked before
 * they are sent, no tags, and a crash between the order and its answer.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import type { ZomroOptions } from "../../../src/providers/zomro/index.ts";
import {
  capabilitiesOf,
  type DesiredMachine,
  type Driver,
  type MachineRef,
} from "../../../src/providers/driver.ts";
import { InvalidRequestError, ProviderError, UnauthorizedError } from "../../../src/providers/errors.ts";
import { observeUntil, testHttp } from "../harness.ts";
import { startZomroSimulator, type ZomroSimulator } from "../../sim/zomro/index.ts";
import { zomroDesired as desired, zomroDriver, zomroOptions as options } from "./kit.ts";

let http: HttpClientFactory;

const driverFor = (sim: ZomroSimulator, credentials?: Record<string, string>) =>
  zomroDriver(sim, http, credentials);
const total = (sim: ZomroSimulator): number => [...sim.requestCounts.values()].reduce((a, b) => a + b, 0);

async function running(d: Driver<ZomroOptions>, want: DesiredMachine<ZomroOptions>): Promise<MachineRef> {
  const { id } = await d.create(want);
  const ref = { id, providerData: {}, options: want.options };
  await observeUntil(d, ref, (m) => m?.providerStatus === "2", "active");
  return ref;
}

before(() => {
  http = testHttp();
});
after(async () => {
  await http.close();
});

describe("zomro against the strict API (only what the document shows)", () => {
  let sim: ZomroSimulator;
  let d: Driver<ZomroOptions>;
  before(async () => {
    sim = await startZomroSimulator({ profile: "strict", faults: { transitionMs: 10 } });
    d = driverFor(sim);
  });
  after(async () => {
    await sim.close();
  });

  test("tariffs come from the order form's preview: validate and order without a pricelist function", async () => {
    const want = desired();
    await d.validate(want);
    const ref = await running(d, want);
    assert.equal(sim.requestCounts.get("v2.instances.order.pricelist") ?? 0, 0, "never asked");
    assert.equal(sim.previews.get("v2.instances.order.param"), 1, "one preview, cached");
    assert.equal(
      sim.vms().find((v) => v.id === ref.id)?.ownerUID,
      want.ownerUID,
      "the domain carries the owner",
    );
    await assert.rejects(
      () => d.validate(desired({ plan: "Cloud VPS Start" })),
      (e: unknown) => e instanceof InvalidRequestError && /3601 \(Cloud VPS Start\)/.test(e.message),
      "a plan is a tariff id; the refusal lists id (name)",
    );
  });

  test("the plan is observed as the tariff id although the list shows its name; a matching plan sends no change", async () => {
    const want = desired();
    const ref = await running(d, want);
    const m = await d.get(ref);
    assert.equal(m?.plan, "3601");
    assert.equal(m.region, "nl", "the datacenter's name maps back to its key");
    assert.deepEqual(
      (await d.findByOwner!(want.ownerUID, want)).map((f) => [f.id, f.plan]),
      [[ref.id, "3601"]],
    );
    await d.resize!(ref, "3601");
    assert.equal(
      sim.requestCounts.get("service.changepricelist") ?? 0,
      0,
      "no change sent for the same tariff",
    );
    await d.resize!(ref, "3603");
    await observeUntil(d, ref, (o) => o?.plan === "3603" && !o.transitional, "resized");
    assert.equal(sim.requestCounts.get("service.changepricelist"), 1);
    const edits = sim.requestCounts.get("instances.edit") ?? 0;
    assert.ok(
      edits <= 1,
      `the missing single read is tried once, then the list serves (${String(edits)} tries)`,
    );
  });

  test("a crash between the order and its answer: a restarted driver finds exactly that VM by owner", async () => {
    const want = desired();
    let ordered: string | undefined;
    sim.faults.onCreated = (id) => {
      ordered = id;
      throw new Error("operator killed before the answer");
    };
    try {
      await assert.rejects(() => d.create(want), ProviderError);
    } finally {
      sim.faults.onCreated = () => undefined;
    }
    assert.ok(ordered, "the provider made the VM");
    const restarted = driverFor(sim);
    assert.ok(capabilitiesOf(restarted).has("findByOwner"));
    assert.deepEqual(
      (await restarted.findByOwner!(want.ownerUID, want)).map((m) => m.id),
      [ordered],
    );
    assert.equal(sim.vms().filter((v) => v.ownerUID === want.ownerUID).length, 1);
  });

  test("an unknown function is never taken for a missing service: rebuild and delete fail, the VM stays", async () => {
    const want = desired();
    const ref = await running(d, want);
    await assert.rejects(
      () => d.rebuild!(ref, "debian-12", want),
      (e: unknown) =>
        e instanceof ProviderError &&
        e.terminal &&
        e.code === "ERR_PROVIDER_UNSUPPORTED" &&
        /instances\.fleio\.rebuild/.test(e.message) &&
        /providerOptions\.functions/.test(e.message),
    );
    const wrong = { ...options, functions: { ...options.functions, delete: "instances.remove" } };
    await assert.rejects(() => d.delete({ ...ref, options: wrong }), ProviderError);
    assert.ok(
      sim.vms().some((v) => v.id === ref.id && v.status === "2"),
      "the VM was neither deleted nor forgotten",
    );
    await d.delete(ref);
    await observeUntil(d, ref, (m) => m === undefined, "deleted");
    await d.delete(ref); // a deleted service (still listed with status 4) counts as gone
  });

  test("an order form that cannot be read never keeps a VM from being observed or deleted", async () => {
    const ref = await running(d, desired());
    const broken = { ...options, functions: { ...options.functions, order: "v2.vds.order.param" } };
    const m = await d.get({ ...ref, options: broken });
    assert.equal(m?.phase, "Running");
    assert.equal(m.plan, undefined, "an unmapped tariff name is no plan (no resize loop)");
    await d.delete({ ...ref, options: broken });
    await observeUntil(d, { ...ref, options: broken }, (o) => o === undefined, "deleted");
  });

  test("ids that BILLmanager cannot have issued are refused before anything is sent", async () => {
    const before = total(sim);
    for (const id of ["../5116801", "5116801&sok=ok", "", "0", "12a"]) {
      const ref = { id, providerData: {} };
      for (const call of [() => d.get(ref), () => d.stop!(ref), () => d.delete(ref)])
        await assert.rejects(
          call,
          (e: unknown) => e instanceof InvalidRequestError && e.message.includes(JSON.stringify(id)),
        );
    }
    assert.equal(total(sim), before, "no request was sent");
  });

  test("zomro keeps no tags: no setTags, so no tags capability (spec tags are reported Unsupported)", () => {
    assert.equal("setTags" in d, false);
    assert.equal(capabilitiesOf(d).has("tags"), false);
  });
});

describe("every not-found spelling is absent (get is undefined, delete resolves)", () => {
  const spellings = [
    { type: "missing", object: "elid" },
    { type: "value", object: "elid" },
    { type: "access", object: "elid" },
    { type: "missing" },
    { type: "notfound" },
  ];
  for (const notFound of spellings) {
    test(`$type ${notFound.type}${notFound.object ? `, $object ${notFound.object}` : ""}`, async () => {
      const sim = await startZomroSimulator({ notFound, faults: { transitionMs: 10 } });
      try {
        const d = driverFor(sim);
        const unknown = { id: "999999999", providerData: {} };
        assert.equal(await d.get(unknown), undefined);
        await d.delete(unknown);
        const ref = await running(d, desired());
        await d.delete(ref);
        await observeUntil(d, ref, (m) => m === undefined, "deleted");
        await d.delete(ref);
        await assert.rejects(() => d.stop!(ref), ProviderError, "acting on it still fails");
      } finally {
        await sim.close();
      }
    });
  }
});

describe("drivers are shared by every object on an account", () => {
  test("function names come from each call's own options, even concurrently", async () => {
    const sim = await startZomroSimulator({ faults: { transitionMs: 10 } });
    try {
      const d = driverFor(sim);
      // Tenant A maps stop to a delete function (its own business); tenant B keeps the defaults.
      const a = desired({
        options: { ...options, functions: { ...options.functions, stop: "instances.delete" } },
      });
      const b = desired();
      const [refA, refB] = await Promise.all([running(d, a), running(d, b)]);
      await d.validate(a);
      await Promise.all([d.stop!(refA), d.stop!(refB)]);
      await observeUntil(d, refB, (m) => m?.phase === "Stopped" && !m.transitional, "B stopped");
      assert.equal(sim.requestCounts.get("service.stop"), 1, "B's stop used B's function");
      // A's "stop" went to its delete function without `sok`: a preview, nothing deleted.
      assert.equal(sim.previews.get("instances.delete"), 1, "A's stop used A's function");
      assert.equal(sim.vms().length, 2, "no VM was deleted");
    } finally {
      await sim.close();
    }
  });
});

describe("no credential, login or session id in an error text", () => {
  test("an error body echoing the request ($object) is scrubbed: password, login, session id", async () => {
    const password = "Pa55 w0rd!&x=1";
    const sim = await startZomroSimulator({
      password,
      echoFieldsInErrors: true,
      faults: { transitionMs: 10 },
    });
    try {
      const seen: string[] = [];
      const bad = driverFor(sim, { username: sim.credentials.username ?? "", password: `${password}?` });
      await assert.rejects(
        () => bad.findByOwner!("x", desired()),
        (e: unknown) => e instanceof UnauthorizedError && seen.push(e.message) > 0,
      );
      const d = driverFor(sim);
      const ref = await running(d, desired());
      await assert.rejects(
        () => d.start!(ref),
        (e: unknown) => e instanceof ProviderError && seen.push(e.message) > 0,
      );
      const login = sim.credentials.username ?? "";
      for (const text of seen) {
        assert.match(text, /\[REDACTED\]/);
        for (const secret of [
          password,
          encodeURIComponent(password),
          new URLSearchParams({ p: password }).toString().slice(2),
          login,
          encodeURIComponent(login),
        ])
          assert.ok(!text.includes(secret), `no secret in: ${text}`);
        assert.doesNotMatch(text, /[0-9a-f]{24}/, `no session id in: ${text}`);
      }
    } finally {
      await sim.close();
    }
  });
});
