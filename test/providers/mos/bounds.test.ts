/**
 * What bounds one driver call: its signal (a cancelled reconcile sends nothing more, helpers'
 * requests included) and the page cap (a list that never ends, or repeats, stops).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { MosOptionsSchema, type MosOptions } from "../../../src/providers/mos/index.ts";
import {
  DEFAULT_MAX_PAGES,
  type CallContext,
  type Driver,
  type MachineRef,
} from "../../../src/providers/driver.ts";
import { ProviderError, ProviderLimitError } from "../../../src/providers/errors.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import type { MosSimulator } from "../../sim/mos/index.ts";
import { calls, closeWorlds, desired, FAST, OTHER_IMAGE, running, total, world } from "./world.ts";

after(closeWorlds);

const LATENCY_MS = 400;
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host";

/**
 * Runs `call` against a slow simulator and aborts its signal while its `nth` request is in
 * flight (the simulator counts a request once its latency has passed, so `nth - 1` are counted
 * when the nth is sent). Returns what the simulator saw and how long the rejection took.
 */
async function abortDuring(
  sim: MosSimulator,
  nth: number,
  call: (ctx: CallContext) => Promise<unknown>,
): Promise<{ seen: number; tookMs: number; outcome: unknown }> {
  sim.faults.latencyMs = LATENCY_MS;
  const before = total(sim);
  const ac = new AbortController();
  const outcome = call({ signal: ac.signal }).then(
    () => "resolved",
    (e: unknown) => e,
  );
  while (total(sim) - before < nth - 1) await sleep(5);
  await sleep(50);
  const t0 = performance.now();
  ac.abort();
  const settled = await outcome;
  const tookMs = performance.now() - t0;
  // Long enough for any request sent after the abort to be counted.
  await sleep(LATENCY_MS + 200);
  sim.faults.latencyMs = 0;
  return { seen: total(sim) - before, tookMs, outcome: settled };
}

for (const profile of SIM_PROFILES) {
  describe(`mos cancellation (${profile} profile)`, () => {
    test("an already-aborted signal sends nothing, from any method", async () => {
      const { sim, d, make } = await world(profile);
      const ref = await running(d, desired());
      const renewing: MachineRef = { ...ref, options: MosOptionsSchema.parse({ autoRenew: true }) };
      const fresh = make(); // nothing cached: validate must read the catalogue
      const ctx: CallContext = { signal: AbortSignal.abort() };
      const want = desired({ sshKeys: [KEY] });
      const before = total(sim);
      const methods: [string, () => Promise<unknown>][] = [
        ["validate", () => fresh.validate(want, ctx)],
        ["create", () => fresh.create(want, ctx)],
        ["get", () => fresh.get(ref, ctx)],
        ["findByOwner", () => fresh.findByOwner!(want.ownerUID, want, ctx)],
        ["listOwned", () => fresh.listOwned?.(ctx) ?? Promise.resolve()],
        ["start", () => fresh.start!(ref, ctx)],
        ["stop", () => fresh.hardStop!(ref, ctx)],
        ["reboot", () => fresh.reboot!(ref, ctx)],
        ["resize", () => fresh.resize!(ref, "medium_net", ctx)],
        ["rebuild", () => fresh.rebuild!(ref, OTHER_IMAGE, want, ctx)],
        ["setTags", () => fresh.setTags!(ref, ["x"], want.ownerUID, ctx)],
        ["renew", () => fresh.renew?.(renewing, ctx) ?? Promise.resolve()],
        ["delete", () => fresh.delete(ref, ctx)],
      ];
      for (const [name, run] of methods) await assert.rejects(run, ProviderError, `${name} rejects`);
      assert.equal(total(sim) - before, 0, "no request reached MOS");
    });

    test("aborting mid-call rejects at once and no later request of the call is sent", async () => {
      const { sim, d, make } = await world(profile);
      const ref = await running(d, desired());
      const renewing: MachineRef = {
        ...ref,
        options: MosOptionsSchema.parse({ autoRenew: true, renewBefore: "24h" }),
      };
      sim.mutate(ref.id, { expireAt: Date.now() + 3_600_000 });
      const cases: [string, number, (ctx: CallContext) => Promise<unknown>][] = [
        // DescribeInstances, then GetInstanceMetadata (the helper's) in flight.
        ["get", 2, (ctx) => d.get(ref, ctx)],
        // DescribeKeyPairs, then ImportKeyPair in flight: CreateInstance is never sent.
        ["create", 2, (ctx) => d.create(desired({ sshKeys: [KEY] }), ctx)],
        // DescribeInstanceTypes, then DescribeTemplates in flight (a fresh catalogue).
        ["validate", 2, (ctx) => make().validate(desired(), ctx)],
        // GetInstanceContractInfo, then GetInstanceMetadata in flight: RenewInstance is never sent.
        ["renew", 2, (ctx) => d.renew?.(renewing, ctx) ?? Promise.resolve()],
      ];
      for (const [name, nth, call] of cases) {
        const { seen, tookMs, outcome } = await abortDuring(sim, nth, call);
        assert.ok(outcome instanceof ProviderError, `${name}: rejected (${String(outcome)})`);
        assert.ok(tookMs < LATENCY_MS / 2, `${name}: rejected ${tookMs.toFixed(0)} ms after the abort`);
        assert.equal(seen, nth, `${name}: the request in flight is the last one`);
      }
      assert.equal(calls(sim, "CreateInstance"), 1, "only the first VM's");
      assert.equal(calls(sim, "RenewInstance"), 0);
    });

    test("a paged list stops being read when its call is cancelled", async () => {
      const { sim, d } = await world(profile);
      sim.listFault = "endless";
      const { seen, outcome } = await abortDuring(sim, 3, (ctx) => d.listOwned?.(ctx) ?? Promise.resolve());
      assert.ok(outcome instanceof ProviderError);
      assert.equal(seen, 3, "no fourth page");
    });
  });

  describe(`mos page cap (${profile} profile)`, () => {
    const capped = (
      sim: MosSimulator,
      make: (c?: undefined, o?: { maxPages: number }) => Driver<MosOptions>,
    ) => {
      sim.listFault = "endless";
      return make(undefined, { maxPages: 3 });
    };
    const tooMany = (why: RegExp) => (e: unknown) =>
      e instanceof ProviderLimitError && e.reason === "TooManyPages" && !e.terminal && why.test(e.message);

    test("a list that never ends stops at ctx.maxPages with TooManyPages, in every lookup", async () => {
      const { sim, d, make } = await world(profile);
      const ref = await running(d, desired());
      const want = desired();
      const lookups: [string, string, (dd: Driver<MosOptions>) => Promise<unknown>][] = [
        ["findByOwner", "DescribeInstances", (dd) => dd.findByOwner!(want.ownerUID, want)],
        ["listOwned", "DescribeInstances", (dd) => dd.listOwned?.() ?? Promise.resolve()],
        ["get", "DescribeInstances", (dd) => dd.get(ref)],
        ["validate", "DescribeInstanceTypes", (dd) => dd.validate(want)],
      ];
      for (const [name, action, lookup] of lookups) {
        const dd = capped(sim, make);
        const before = calls(sim, action);
        await assert.rejects(() => lookup(dd), tooMany(/did not end within 3 pages/), name);
        assert.equal(calls(sim, action) - before, 3, `${name}: three pages, no more`);
      }
    });

    test("without a cap in the context the driver stops at DEFAULT_MAX_PAGES", async () => {
      const { sim, d } = await world(profile, {}, undefined, FAST);
      sim.listFault = "endless";
      await assert.rejects(() => d.listOwned?.() ?? Promise.resolve(), tooMany(/100 pages/));
      assert.equal(calls(sim, "DescribeInstances"), DEFAULT_MAX_PAGES);
    });

    test("a page that repeats the one before (Offset ignored) stops the list at once", async () => {
      const { sim, d } = await world(profile);
      sim.listFault = "repeating";
      await assert.rejects(() => d.findByOwner!("someone", desired()), tooMany(/repeats the one before/));
      assert.equal(calls(sim, "DescribeInstances"), 2);
      await assert.rejects(() => d.validate(desired()), tooMany(/repeats/));
      assert.equal(calls(sim, "DescribeInstanceTypes"), 2);
    });
  });
}
