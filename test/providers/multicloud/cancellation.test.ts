/**
 * Cancellation: every request of a driver call carries the call's signal, so an aborted call
 * stops at once and sends nothing more — counted at the simulator as requests arrive.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import type { MulticloudOptions } from "../../../src/providers/multicloud/index.ts";
import type { CallContext, Driver, MachineRef } from "../../../src/providers/driver.ts";
import { ProviderError } from "../../../src/providers/errors.ts";
import { observeUntil } from "../harness.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { startMulticloudSimulator, type MulticloudSimulator } from "../../sim/multicloud/index.ts";
import { desired, makeDriver, options, running, template, unthrottledHttp } from "./kit.ts";

let http: HttpClientFactory;
before(() => {
  http = unthrottledHttp();
});
after(async () => {
  await http.close();
});

type D = Driver<MulticloudOptions>;

/** A driver call to abort at each of its requests: `setup` makes what it needs, anew each time. */
interface Scenario<S> {
  name: string;
  setup(d: D, sim: MulticloudSimulator): Promise<S>;
  run(d: D, state: S, ctx: CallContext): Promise<unknown>;
}

// Scenarios of different states in one list (methods are compared bivariantly).
const scenario = <S>(s: Scenario<S>): Scenario<unknown> => s;

async function createRunning(d: D, want = desired()): Promise<MachineRef> {
  const r = await d.create(want);
  const ref = { id: r.id, providerData: { ...want.providerData, ...r.providerData } };
  await observeUntil(d, ref, running, "Running");
  return ref;
}

/**
 * Runs the call once to count its requests (n), then n times more, each time with a fresh
 * driver (empty catalogue cache: its reads are part of the call) and the signal aborted as
 * its k-th request arrives: exactly k requests reach the simulator, whatever the call does
 * with the failure (settle, clean up, try the other route, go on to the next template).
 */
async function abortAtEveryRequest(sim: MulticloudSimulator, s: Scenario<unknown>): Promise<number> {
  const setupDriver = makeDriver(http, sim);
  const reference = await s.setup(setupDriver, sim);
  const first = sim.arrived();
  await s
    .run(makeDriver(http, sim), reference, { signal: new AbortController().signal })
    .catch(() => undefined);
  const n = sim.arrived() - first;
  assert.ok(n > 0, `${s.name}: the call sends requests`);
  for (let k = 1; k <= n; k++) {
    const state = await s.setup(setupDriver, sim);
    const d = makeDriver(http, sim);
    const ac = new AbortController();
    let seen = 0;
    sim.onArrival = () => {
      if (++seen === k) ac.abort();
    };
    const start = sim.arrived();
    try {
      await s.run(d, state, { signal: ac.signal }).catch(() => undefined);
      await sleep(30); // a request sent after the call settled would arrive by now
    } finally {
      sim.onArrival = () => undefined;
    }
    assert.ok(ac.signal.aborted, `${s.name}: the call reached its request ${String(k)} again`);
    assert.equal(sim.arrived() - start, k, `${s.name}: aborted at request ${String(k)} of ${String(n)}`);
  }
  return n;
}

const scenarios = [
  scenario({
    name: "create (catalogues, private template, expand)",
    setup: () => Promise.resolve(undefined),
    run: (d, _s, ctx) => d.create(desired(), ctx),
  }),
  scenario({
    name: "create from a shared template",
    setup: (d) => d.syncTemplate!(template()),
    run: (d, tpl: Record<string, string>, ctx) => d.create(desired({ providerData: tpl }), ctx),
  }),
  scenario({
    name: "get of a gone instance (settled by the list, then its template deleted)",
    setup: async (d, sim) => {
      const want = desired();
      const r = await d.create(want);
      const ref = { id: r.id, providerData: { ...want.providerData, ...r.providerData } };
      await d.delete(ref);
      for (let i = 0; i < 500 && sim.vms().some((v) => v.id === ref.id); i++) await sleep(10);
      return ref;
    },
    run: (d, ref: MachineRef, ctx) => d.get({ ...ref, options }, ctx),
  }),
  scenario({
    name: "findByOwner over a shared template (log reads)",
    setup: async (d) => {
      const tpl = await d.syncTemplate!(template());
      const want = desired({ providerData: tpl });
      // Running, with addresses: what the log reads answer no longer changes (default profile).
      await createRunning(d, desired({ providerData: tpl }));
      await createRunning(d, want);
      return want;
    },
    run: (d, want: ReturnType<typeof desired>, ctx) => d.findByOwner!(want.ownerUID, want, ctx),
  }),
  scenario({
    name: "syncTemplate replacing a template in use",
    setup: async (d) => {
      const tpl = template();
      const first = await d.syncTemplate!(tpl);
      await d.create(desired({ providerData: first }));
      return { ...tpl, providerData: first, plan: "4Cores-8GB" };
    },
    run: (d, tpl: ReturnType<typeof template>, ctx) => d.syncTemplate!(tpl, ctx),
  }),
  scenario({
    name: "deleteTemplate of a template and a retired one",
    setup: async (d) => {
      const a = await d.syncTemplate!(template());
      const b = await d.syncTemplate!(template());
      return { clusterId: a.clusterId ?? "", retiredClusterIds: b.clusterId ?? "" };
    },
    run: (d, data: Record<string, string>, ctx) => d.deleteTemplate!(data, ctx),
  }),
  scenario({
    name: "listOwned",
    setup: () => Promise.resolve(undefined),
    run: (d, _s, ctx) => d.listOwned!(ctx),
  }),
];

for (const profile of SIM_PROFILES) {
  describe(`multicloud cancellation (${profile} profile)`, () => {
    let sim: MulticloudSimulator;
    before(async () => {
      sim = await startMulticloudSimulator({ profile, faults: { transitionMs: 20 } });
    });
    after(async () => {
      await sim.close();
    });

    test("a call aborted while a request is in flight rejects at once and sends nothing more", async () => {
      const latencyMs = 1000;
      const templates = sim.clusters().length;
      const vms = sim.vms().length;
      sim.faults.latencyMs = latencyMs;
      try {
        const ac = new AbortController();
        const before = sim.arrived();
        const call = makeDriver(http, sim).create(desired(), { signal: ac.signal });
        while (sim.arrived() === before) await sleep(5);
        ac.abort();
        const aborted = performance.now();
        await assert.rejects(call, ProviderError);
        const ms = performance.now() - aborted;
        assert.ok(ms < latencyMs / 2, `rejected ${ms.toFixed(0)} ms after the abort, not with the answer`);
        await sleep(latencyMs * 1.5);
        assert.equal(sim.arrived() - before, 1, "only the request in flight reached the simulator");
      } finally {
        sim.faults.latencyMs = 0;
      }
      assert.equal(sim.clusters().length, templates, "no template made");
      assert.equal(sim.vms().length, vms, "no VM made");
    });

    test("an already-aborted signal sends nothing, whatever the method", async () => {
      const d = makeDriver(http, sim);
      const ctx = { signal: AbortSignal.abort() };
      const ref = { id: "i-000000000001", providerData: { privateClusterId: "1", ownerUID: "x" } };
      const data = { clusterId: "1", retiredClusterIds: "2" };
      const before = sim.arrived();
      const calls: [string, () => Promise<unknown>][] = [
        ["validate", () => d.validate(desired(), ctx)],
        ["create", () => d.create(desired(), ctx)],
        ["get", () => d.get({ ...ref, options }, ctx)],
        ["findByOwner", () => d.findByOwner!("x", desired({ providerData: data }), ctx)],
        ["start", () => d.start!(ref, ctx)],
        ["delete", () => d.delete(ref, ctx)],
        ["syncTemplate", () => d.syncTemplate!(template({ providerData: data }), ctx)],
        ["templateExists", () => d.templateExists!(data, ctx)],
        ["deleteTemplate", () => d.deleteTemplate!(data, ctx)],
        ["listOwned", () => d.listOwned!(ctx)],
      ];
      for (const [name, call] of calls)
        await assert.rejects(call, ProviderError, `${name} rejects without sending`);
      assert.equal(sim.arrived(), before, "no request reached the simulator");
    });

    for (const s of scenarios)
      test(`aborted at any of its requests, ${s.name} sends no further one`, async () => {
        await abortAtEveryRequest(sim, s);
      });
  });
}

test("aborted at the first route spelling, start does not try the other one", async () => {
  const sim = await startMulticloudSimulator({
    profile: "strict",
    routes: "source",
    faults: { transitionMs: 20 },
  });
  try {
    const n = await abortAtEveryRequest(
      sim,
      scenario({
        name: "start (document's route, then the source's)",
        setup: (d) => createRunning(d),
        run: (d, ref: MachineRef, ctx) => d.start!(ref, ctx),
      }),
    );
    assert.equal(n, 2, "the document's spelling, then the source's");
  } finally {
    await sim.close();
  }
});
