/**
 * Cancellation, on both simulator profiles: a driver call's signal reaches every request the
 * call leads to (the login and the order form's preview included), an aborted call rejects at
 * once, and nothing of it reaches BILLmanager afterwards. The simulator counts a request once
 * its latency has passed, so a request in flight at the abort is still counted: "nothing more"
 * means at most the requests already started.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import type { ZomroOptions } from "../../../src/providers/zomro/index.ts";
import type { CallContext, Driver, MachineRef } from "../../../src/providers/driver.ts";
import { TransientError } from "../../../src/providers/errors.ts";
import { testHttp } from "../harness.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { startZomroSimulator, type ZomroSimulator } from "../../sim/zomro/index.ts";
import { totalRequests as total, zomroDesired as desired, zomroDriver } from "./kit.ts";

const LATENCY_MS = 400;
const isCancelled = (e: unknown): boolean =>
  e instanceof TransientError && /cancelled|abort/i.test(e.message);

/** Every driver method, called with `ctx`. */
function everyMethod(
  d: Driver<ZomroOptions>,
  ref: MachineRef,
  ctx: CallContext,
): [string, () => Promise<unknown>][] {
  const want = desired();
  return [
    ["validate", () => d.validate(want, ctx)],
    ["create", () => d.create(want, ctx)],
    ["get", () => d.get(ref, ctx)],
    ["findByOwner", () => d.findByOwner!(want.ownerUID, want, ctx)],
    ["start", () => d.start!(ref, ctx)],
    ["stop", () => d.stop!(ref, ctx)],
    ["resize", () => d.resize!(ref, "3603", ctx)],
    ["rebuild", () => d.rebuild!(ref, "debian-12", want, ctx)],
    ["delete", () => d.delete(ref, ctx)],
    ["listOwned", () => d.listOwned?.(ctx) ?? Promise.reject(new Error("no listOwned"))],
  ];
}

let http: HttpClientFactory;
before(() => {
  http = testHttp();
});
after(async () => {
  await http.close();
});

for (const profile of SIM_PROFILES) {
  describe(`zomro cancellation (${profile} profile)`, () => {
    let sim: ZomroSimulator;
    let ref: MachineRef;
    before(async () => {
      sim = await startZomroSimulator({ profile, faults: { transitionMs: 10 } });
      const { id } = await zomroDriver(sim, http).create(desired());
      ref = { id, providerData: {} };
    });
    after(async () => {
      await sim.close();
    });

    test("an already-aborted signal sends nothing, from any method, with or without a session", async () => {
      const fresh = zomroDriver(sim, http);
      const warm = zomroDriver(sim, http);
      await warm.get(ref); // a session and the order form in its caches
      const ctx = { signal: AbortSignal.abort() };
      const before = total(sim);
      for (const d of [fresh, warm])
        for (const [name, call] of everyMethod(d, ref, ctx))
          await assert.rejects(call, isCancelled, `${name} rejects as cancelled`);
      assert.equal(total(sim), before, "no request reached the simulator");
    });

    // A fresh driver's findByOwner sends three requests one after the other: the login, the
    // order form's preview, the list. Aborted during each, it sends none of the later ones.
    const steps = [
      { abortAt: 150, during: "auth", notSent: ["v2.instances.order.param", "instances"] },
      { abortAt: LATENCY_MS + 150, during: "the order form", notSent: ["instances"] },
      { abortAt: 2 * LATENCY_MS + 150, during: "the list", notSent: [] },
    ];
    for (const { abortAt, during, notSent } of steps)
      test(`aborted during ${during}: rejects at once, and nothing later is sent`, async () => {
        const d = zomroDriver(sim, http);
        const counts = new Map(sim.requestCounts);
        const before = total(sim);
        const ac = new AbortController();
        sim.faults.latencyMs = LATENCY_MS;
        try {
          const call = d.findByOwner!("nobody", desired(), { signal: ac.signal });
          const settled = call.then(
            () => "resolved",
            (e: unknown) => e,
          );
          await sleep(abortAt);
          const abortedAt = Date.now();
          ac.abort();
          const outcome = await settled;
          const took = Date.now() - abortedAt;
          assert.ok(isCancelled(outcome), `rejected as cancelled, got ${String(outcome)}`);
          assert.ok(took < LATENCY_MS / 2, `rejected ${String(took)} ms after the abort`);
          await sleep(2 * LATENCY_MS); // what was in flight is counted by now
        } finally {
          sim.faults.latencyMs = 0;
        }
        const sent = total(sim) - before;
        assert.ok(sent <= Math.ceil(abortAt / LATENCY_MS), `${String(sent)} requests for the call`);
        for (const func of notSent)
          assert.equal(sim.requestCounts.get(func) ?? 0, counts.get(func) ?? 0, `no ${func} after the abort`);
      });

    test("a call cancelled while another waits on the same login leaves it the login (sent once)", async () => {
      const d = zomroDriver(sim, http);
      const logins = sim.requestCounts.get("auth") ?? 0;
      const previews = sim.previews.get("v2.instances.order.param") ?? 0;
      const ac = new AbortController();
      sim.faults.latencyMs = LATENCY_MS;
      try {
        const cancelledCall = d.findByOwner!("nobody", desired(), { signal: ac.signal });
        const other = d.findByOwner!("nobody", desired(), { signal: new AbortController().signal });
        await sleep(100);
        ac.abort();
        await assert.rejects(cancelledCall, isCancelled);
        assert.deepEqual(await other, []);
      } finally {
        sim.faults.latencyMs = 0;
      }
      assert.equal((sim.requestCounts.get("auth") ?? 0) - logins, 1, "one login for both");
      assert.equal((sim.previews.get("v2.instances.order.param") ?? 0) - previews, 1, "one preview");
    });

    test("when every call waiting on a login is cancelled the login stops; the next call logs in afresh", async () => {
      const d = zomroDriver(sim, http);
      const a = new AbortController();
      const b = new AbortController();
      sim.faults.latencyMs = LATENCY_MS;
      const before = total(sim);
      try {
        const calls = [a, b].map((ac) => d.get(ref, { signal: ac.signal }));
        await sleep(100);
        a.abort();
        b.abort();
        for (const call of calls) await assert.rejects(call, isCancelled);
        await sleep(2 * LATENCY_MS);
        assert.equal(total(sim) - before, 1, "only the login in flight reached the simulator");
      } finally {
        sim.faults.latencyMs = 0;
      }
      assert.equal((await d.get(ref))?.id, ref.id, "a later call is not failed by the cancelled login");
    });
  });
}
