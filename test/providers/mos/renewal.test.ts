/**
 * Lease renewal as a decided action (review A7): a read only observes (`renewalDue`), `renew`
 * bills, and one lease end is billed at most once — a lost answer included.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MosOptionsSchema } from "../../../src/providers/mos/index.ts";
import type { MachineRef } from "../../../src/providers/driver.ts";
import { InvalidRequestError, QuotaOrBillingError } from "../../../src/providers/errors.ts";
import { SIMULATORS } from "../../sim/all.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { MOS_TYPES } from "../../sim/mos/index.ts";
import { calls, closeWorlds, desired, running, world } from "./world.ts";

after(closeWorlds);

const autoRenew = MosOptionsSchema.parse({ autoRenew: true, renewBefore: "24h", duration: "72H" });
const HOUR = 3_600_000;

for (const profile of SIM_PROFILES) {
  describe(`mos renewal (${profile} profile)`, () => {
    test("get never sends RenewInstance; renew sends exactly one, for the options' duration", async () => {
      const { sim, d } = await world(profile);
      const ref = await running(d, desired());
      const renewing: MachineRef = { ...ref, options: autoRenew };
      const end = Date.now() + HOUR;
      sim.mutate(ref.id, { expireAt: end });

      assert.equal((await d.get(ref))?.renewalDue, undefined, "no autoRenew in the options: never due");
      assert.equal(calls(sim, "GetInstanceContractInfo"), 0, "nor is the contract read");
      const due = await d.get(renewing);
      await d.get(renewing);
      assert.match(due?.renewalDue?.message ?? "", /within renewBefore 24h: renewing it for 72H/);
      assert.equal(calls(sim, "RenewInstance"), 0, "reads bill nothing");

      const balance = sim.balance;
      await d.renew?.(renewing);
      assert.equal(calls(sim, "RenewInstance"), 1);
      const price = MOS_TYPES.find((t) => t.name === SIMULATORS.mos.spec.plan)?.price ?? NaN;
      assert.equal(
        Math.round((balance - sim.balance) * 100),
        Math.round(price * 10),
        "billed for 72H (0.1 month)",
      );
      const after = await d.get(renewing);
      assert.equal(after?.renewalDue, undefined, "the lease moved 72 hours: not due");
      await d.renew?.(renewing);
      assert.equal(calls(sim, "RenewInstance"), 1, "a stale decision bills nothing");

      sim.mutate(ref.id, { expireAt: Date.now() + 48 * HOUR });
      assert.equal((await d.get(renewing))?.renewalDue, undefined, "outside renewBefore: not due");
    });

    test("a lease end MOS does not move is never billed twice: the mark is written before RenewInstance", async () => {
      const { sim, d } = await world(profile);
      const ref = await running(d, desired());
      const renewing: MachineRef = { ...ref, options: autoRenew };
      const end = Date.now() + HOUR;
      sim.mutate(ref.id, { expireAt: end });
      await d.renew?.(renewing);
      sim.mutate(ref.id, { expireAt: end });
      const stuck = await d.get(renewing);
      assert.equal(stuck?.renewalDue, undefined);
      assert.match(stuck?.message ?? "", /not renewing again/);
      await assert.rejects(
        () => d.renew?.(renewing) ?? Promise.resolve(),
        (e: unknown) => e instanceof InvalidRequestError && e.reason === "AlreadyRenewed",
      );
      assert.equal(calls(sim, "RenewInstance"), 1);
    });

    test("a RenewInstance without a definite answer (503) keeps the mark; a 406 clears it and is terminal", async () => {
      const { sim, d } = await world(profile);
      const ref = await running(d, desired());
      const renewing: MachineRef = { ...ref, options: autoRenew };
      sim.mutate(ref.id, { expireAt: Date.now() + HOUR });
      sim.breakAction("RenewInstance", 1);
      await assert.rejects(() => d.renew?.(renewing) ?? Promise.resolve());
      assert.equal(calls(sim, "RenewInstance"), 1, "a billed call is not repeated by the HTTP layer");
      assert.match((await d.get(renewing))?.message ?? "", /not renewing again/, "it may have been billed");

      const other = await running(d, desired());
      const poor: MachineRef = { ...other, options: autoRenew };
      sim.mutate(other.id, { expireAt: Date.now() + HOUR });
      const balance = sim.balance;
      sim.balance = 0;
      await assert.rejects(
        () => d.renew?.(poor) ?? Promise.resolve(),
        (e: unknown) => e instanceof QuotaOrBillingError && e.terminal && /No enough balance/.test(e.message),
      );
      sim.balance = balance;
      const again = await d.get(poor);
      assert.equal(again?.phase, "Running");
      assert.ok(again?.renewalDue !== undefined, "refused, so nothing was billed: due again");
    });

    test("options that do not parse: the read says so, renew bills nothing", async () => {
      const { sim, d } = await world(profile);
      const ref = await running(d, desired());
      const bad: MachineRef = { ...ref, options: { autoRenew: true, duration: "forever" } };
      const m = await d.get(bad);
      assert.equal(m?.renewalDue, undefined);
      assert.match(m?.message ?? "", /auto-renewal: .*duration/);
      await assert.rejects(() => d.renew?.(bad) ?? Promise.resolve(), InvalidRequestError);
      assert.equal(calls(sim, "RenewInstance") + calls(sim, "GetInstanceContractInfo"), 0);
    });
  });
}
