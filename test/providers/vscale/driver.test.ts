import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { capabilitiesOf } from "../../../src/providers/driver.ts";
import {
  InvalidRequestError,
  QuotaOrBillingError,
  TransientError,
  UnauthorizedError,
} from "../../../src/providers/errors.ts";
import { observeUntil } from "../harness.ts";
import { settled, vscaleWorld } from "./world.ts";

// The default profile: the document plus what the real Vscale API does beyond it.
const w = vscaleWorld("default");

describe("vscale driver (default profile)", () => {
  test("a new scalet is `defined` and locked (transitional), then `started`; do_start follows powerState", async () => {
    const { id, observed } = await w.d.create(w.desired());
    assert.equal(observed?.providerStatus, "defined");
    assert.equal(observed?.transitional, true);
    const ref = { id, providerData: {} };
    const m = await observeUntil(w.d, ref, settled("started"));
    assert.equal(m?.phase, "Running");
    assert.ok((m?.addresses.public.length ?? 0) > 0);
    const stopped = await w.d.create(w.desired({ powerState: "Stopped" }));
    const s = await observeUntil(w.d, { id: stopped.id, providerData: {} }, settled("stopped"));
    assert.equal(s?.phase, "Stopped");
  });

  test("public keys in sshKeys are registered through /sshkeys once and then reused; names and ids resolve", async () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host";
    await w.d.create(w.desired({ sshKeys: [key] }));
    await w.d.create(w.desired({ sshKeys: [key] }));
    assert.equal(w.sim.sshKeys().filter((k) => k.key === key).length, 1);
    assert.equal(w.sim.requestCounts.get("POST /v1/sshkeys") ?? 0, 1);
    const { id } = await w.d.create(w.desired({ sshKeys: ["92", "key"] }));
    assert.ok(id);
    await assert.rejects(
      () => w.d.create(w.desired({ sshKeys: ["no-such-key-name"] })),
      (e: unknown) =>
        e instanceof InvalidRequestError && /no SSH key named "no-such-key-name"/.test(e.message),
    );
    assert.equal(w.sim.requestCounts.get("POST /v1/sshkeys") ?? 0, 1, "a name is never registered as a key");
  });

  test("validation names the valid rplans, images and locations, and checks image x rplan", async () => {
    await assert.rejects(
      () => w.d.validate(w.desired({ plan: "gigantic" })),
      (e: unknown) =>
        e instanceof InvalidRequestError && /small, medium, large, huge, monster/.test(e.message),
    );
    await assert.rejects(
      () => w.d.validate(w.desired({ region: "nyc1" })),
      (e: unknown) => e instanceof InvalidRequestError && /spb0, msk0/.test(e.message),
    );
    await assert.rejects(
      () => w.d.validate(w.desired({ plan: "small", image: "centos_7.1_64_001_master" })),
      (e: unknown) => e instanceof InvalidRequestError && /not offered with rplan "small"/.test(e.message),
    );
    const before = w.sim.requestCounts.get("GET /v1/rplans") ?? 0;
    await w.d.validate(w.desired());
    assert.equal(w.sim.requestCounts.get("GET /v1/rplans") ?? 0, before, "the catalogue is cached");
  });

  test("a downgrade is refused before any call, with reason DowngradeRefused", async () => {
    const { id } = await w.d.create(w.desired({ plan: "large" }));
    const ref = { id, providerData: {} };
    await observeUntil(w.d, ref, settled("started"));
    await assert.rejects(
      () => w.d.resize!(ref, "small"),
      (e: unknown) => e instanceof InvalidRequestError && e.reason === "DowngradeRefused" && e.terminal,
    );
    assert.equal(w.sim.requestCounts.get("POST /v1/scalets/:id/upgrade") ?? 0, 0);
  });

  test("a read-only token can read but a write is a terminal Unauthorized saying so", async () => {
    const ro = w.driver({ token: w.sim.readOnlyToken });
    assert.deepEqual(await ro.findByOwner!("nobody", w.desired()), []);
    await assert.rejects(
      () => ro.create(w.desired()),
      (e: unknown) => e instanceof UnauthorizedError && e.terminal && /read-only/.test(e.message),
    );
  });

  test("billing: Stopped with the reason; starting it is a billing error", async () => {
    const { id } = await w.d.create(w.desired());
    const ref = { id, providerData: {} };
    await observeUntil(w.d, ref, settled("started"));
    w.sim.mutate(id, { status: "billing" });
    const m = await w.d.get(ref);
    assert.equal(m?.phase, "Stopped");
    assert.match(m?.message ?? "", /non-payment/);
    await assert.rejects(() => w.d.start!(ref), QuotaOrBillingError);
  });

  test("locked means wait; an action on a locked scalet is retryable; a failed task is reported", async () => {
    const { id } = await w.d.create(w.desired());
    const ref = { id, providerData: {} };
    await observeUntil(w.d, ref, settled("started"));
    w.sim.mutate(id, { locked: true });
    assert.equal((await w.d.get(ref))?.transitional, true, "locked: an operation runs");
    await assert.rejects(() => w.d.stop!(ref), TransientError);
    w.sim.mutate(id, { locked: false });
    w.sim.failNextTask(id);
    await w.d.reboot!(ref);
    const m = await observeUntil(w.d, ref, (o) => o !== undefined && !o.transitional);
    assert.match(m?.message ?? "", /scalet_restart .*failed/);
  });

  test("tags are kept through the tags API; the owner mark is the name and survives", async () => {
    const want = w.desired({ tags: ["web"] });
    const { id } = await w.d.create(want);
    const ref = { id, providerData: {} };
    await observeUntil(w.d, ref, settled("started"));
    assert.ok(capabilitiesOf(w.d).has("tags"), "this API has tags");
    await w.d.setTags!(ref, ["web", "prod"], want.ownerUID);
    let m = await w.d.get(ref);
    assert.deepEqual([...(m?.tags ?? [])].sort(), ["prod", "web"]);
    await w.d.setTags!(ref, ["prod"], want.ownerUID);
    m = await w.d.get(ref);
    assert.deepEqual(m?.tags, ["prod"]);
    assert.equal(m?.ownerUID, want.ownerUID);
    assert.match(m?.name ?? "", /^ns-web--cio-/);
  });

  test("no rebuild and no hard stop: Vscale reinstalls only a scalet's own image and has one stop", () => {
    const caps = capabilitiesOf(w.d);
    assert.equal(caps.has("rebuild"), false, "an image change is reported Unsupported, never sent");
    assert.equal(caps.has("hardStop"), false);
    assert.ok(caps.has("resize") && caps.has("reboot") && caps.has("stop"));
  });

  test("errors carry the Vscale-Error-Message text and the body's field", async () => {
    await assert.rejects(
      () => w.d.create(w.desired({ plan: "nope" })),
      (e: unknown) => e instanceof InvalidRequestError && /Unknown rplan \(field rplan\)/.test(e.message),
    );
  });
});
