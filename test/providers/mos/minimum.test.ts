/**
 * The mos driver against the document's minimum (issue 17): the strict simulator, and the
 * default one where a fix must hold on both. Each test fails on the driver before the fix.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { capabilitiesOf, type MachineRef } from "../../../src/providers/driver.ts";
import { InvalidRequestError, TransientError, UnauthorizedError } from "../../../src/providers/errors.ts";
import { captureLogs, observeUntil } from "../harness.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { calls, closeWorlds, desired, IMAGE, OTHER_IMAGE, running, total, world } from "./world.ts";

after(closeWorlds);

describe("mos: the image is never silently lost (strict profile)", () => {
  test("a failed metadata write after create is retried (bounded), logged, and written again by the next read", async () => {
    const { logger, lines } = captureLogs();
    const { sim, d } = await world("strict", {}, logger);
    sim.breakAction("PutInstanceMetadata", 1000);
    const r = await d.create(desired({ tags: ["web"] }));
    const puts = calls(sim, "PutInstanceMetadata");
    assert.ok(puts >= 3 && puts <= 12, `retried, and bounded: ${String(puts)} writes`);
    assert.equal(sim.metadata(r.id)?.["cio-image"], undefined);
    assert.equal(r.observed?.image, undefined, "no image is claimed that MOS does not hold");
    assert.ok(
      r.providerData && Object.values(r.providerData).includes(IMAGE),
      "the image travels in providerData",
    );
    assert.ok(
      lines.some((l) => l.includes('"level":"warn"') && /not recorded/.test(l)),
      "a warning says the image is not recorded",
    );

    const ref: MachineRef = { id: r.id, providerData: r.providerData };
    await assert.rejects(
      () => d.get(ref),
      (e: unknown) => e instanceof TransientError && /no image recorded/.test(e.message),
      "the next read reports it while MOS keeps refusing",
    );
    sim.breakAction("PutInstanceMetadata", 0);
    const m = await d.get(ref);
    assert.equal(m?.image, IMAGE, "observed again once written");
    assert.equal(sim.metadata(r.id)?.["cio-image"], IMAGE);
    assert.deepEqual(m?.tags, [], "tags not written count as none, so the reconciler sets them");
  });

  test("a rebuild is never sent when its image cannot be recorded; a refused rebuild puts the record back", async () => {
    const { sim, d } = await world("strict");
    const ref = await running(d, desired());
    sim.breakAction("PutInstanceMetadata", 1000);
    await assert.rejects(() => d.rebuild!(ref, OTHER_IMAGE, desired()));
    assert.equal(calls(sim, "RebuildInstanceRootImage"), 0, "no disk wiped whose image is not recorded");
    sim.breakAction("PutInstanceMetadata", 0);
    await assert.rejects(
      () => d.rebuild!(ref, "00000000-0000-4000-8000-000000000000", desired()),
      InvalidRequestError,
    );
    assert.equal(sim.metadata(ref.id)?.["cio-image"], IMAGE, "refused: the record is what the disk holds");
    await d.rebuild!(ref, OTHER_IMAGE, desired());
    const m = await observeUntil(d, ref, (o) => o?.image === OTHER_IMAGE && !o.transitional);
    assert.equal(m?.image, OTHER_IMAGE);
  });
});

describe("mos: crash between CreateInstance and the status write (strict profile)", () => {
  test("a restarted driver finds the VM by owner and completes its metadata; no second VM", async () => {
    const { sim, d, make } = await world("strict");
    const want = desired({ tags: ["web", "db"] });
    let created: string | undefined;
    sim.faults.onCreated = (id) => {
      created = id;
      throw new Error("the operator is killed before the answer arrives");
    };
    await assert.rejects(() => d.create(want), TransientError);
    sim.faults.onCreated = () => undefined;
    assert.ok(created !== undefined);

    const restarted = make();
    assert.ok(capabilitiesOf(restarted).has("findByOwner"));
    const found = await restarted.findByOwner!(want.ownerUID, want);
    assert.deepEqual(
      found.map((f) => f.id),
      [created],
    );
    assert.equal(found[0]?.image, IMAGE);
    assert.deepEqual(found[0]?.tags, ["web", "db"]);
    assert.equal(sim.metadata(created)?.["cio-image"], IMAGE);
    assert.equal(sim.vms().filter((v) => v.ownerUID === want.ownerUID).length, 1);
    const m = await restarted.get({ id: created, providerData: {} });
    assert.equal(m?.image, IMAGE, "a later image change will be noticed against this");
  });
});

describe("mos: deletion ends on the documented answers", () => {
  for (const refuses of [false, true]) {
    test(`strict profile, DescribeInstances ${refuses ? "refuses" : "leaves out"} unknown ids: delete resolves and get is undefined`, async () => {
      const { sim, d } = await world("strict", { describeRefusesUnknownIds: refuses });
      const ref = await running(d, desired());
      await d.delete(ref);
      await observeUntil(d, ref, (o) => o === undefined, "gone");
      await d.delete(ref);
      assert.equal(await d.get({ id: "00000000-0000-4000-8000-000000000000", providerData: {} }), undefined);
      assert.deepEqual(sim.vms(), []);
    });
  }
});

describe("mos: requests carry only what they should", () => {
  test("an id that is not a MOS instance id is refused, naming it, before anything is sent", async () => {
    const { sim, d } = await world("strict");
    const before = total(sim);
    const bad: MachineRef = { id: "cio-someone-else", providerData: {} };
    const named = (e: unknown) =>
      e instanceof InvalidRequestError && e.message.includes('"cio-someone-else"');
    await assert.rejects(() => d.get(bad), named);
    await assert.rejects(() => d.delete(bad), named);
    await assert.rejects(() => d.start!(bad), named);
    await assert.rejects(() => d.hardStop!(bad), named);
    await assert.rejects(() => d.setTags!(bad, ["x"], "u"), named);
    await assert.rejects(() => d.resize!(bad, "medium_net"), named);
    assert.equal(total(sim), before, "no request sent");
  });

  test("providerOptions that do not parse bill nothing (no silent 1M lease)", async () => {
    const { sim, d } = await world("strict");
    const ref = await running(d, desired());
    await assert.rejects(
      () => d.resize!({ ...ref, options: { duration: "forever" } }, "medium_net"),
      (e: unknown) => e instanceof InvalidRequestError && /duration/.test(e.message),
    );
    assert.equal(calls(sim, "ChangeInstanceType"), 0);
  });

  for (const profile of SIM_PROFILES) {
    test(`${profile} profile: an error echoing the request carries no access key id or signature`, async () => {
      const { logger, lines } = captureLogs();
      const { sim, make } = await world(profile, {}, logger);
      const bad = make({ ...sim.credentials, secretAccessKey: "not-the-secret-key" });
      let message = "";
      await assert.rejects(
        () => bad.get({ id: "00000000-0000-4000-8000-000000000000", providerData: {} }),
        (e: unknown) => e instanceof UnauthorizedError && ((message = e.message), true),
      );
      assert.match(message, /Signature=\[REDACTED\]/);
      const key = sim.credentials.accessKeyId ?? "";
      assert.ok(!message.includes(key), `no access key id in: ${message}`);
      assert.ok(!lines.join("\n").includes(key), "no access key id in a log line");
    });
  }
});
