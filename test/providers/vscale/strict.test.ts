/**
 * The vscale driver against an API that implements only what vscale.txt shows (the strict
 * simulator): no tags, no /sshkeys, no catalogues, no Vscale-Task-Id, errors without a body.
 * Each test here failed on the driver before issue 17's fixes.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { capabilitiesOf } from "../../../src/providers/driver.ts";
import { InvalidRequestError, NotFoundError, UnsupportedError } from "../../../src/providers/errors.ts";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { VscaleApi } from "../../../src/providers/vscale/api.ts";
import { TAGS_REPROBE_MS, VscaleTags } from "../../../src/providers/vscale/account.ts";
import { observeUntil } from "../harness.ts";
import { settled, vscaleWorld } from "./world.ts";

const w = vscaleWorld("strict");

async function running(over: Parameters<typeof w.desired>[0] = {}) {
  const desired = w.desired(over);
  const { id } = await w.d.create(desired);
  const ref = { id, providerData: {} };
  await observeUntil(w.d, ref, settled("started"));
  return { ref, desired };
}

describe("vscale driver against the document's minimum (strict profile)", () => {
  test("no tags API: tags observed as [], the capability dropped, setTags refuses without sending anything", async () => {
    const fresh = w.driver();
    const { ref, desired } = await running();
    // Before anything is known, the first setTags probes once and refuses: never "success".
    await assert.rejects(
      () => fresh.setTags!(ref, ["web"], desired.ownerUID),
      (e: unknown) => e instanceof UnsupportedError && /no tags endpoint/.test(e.message),
    );
    assert.equal(capabilitiesOf(fresh).has("tags"), false);
    const m = await w.d.get(ref);
    assert.deepEqual(m?.tags, [], "no tag can exist");
    assert.equal(capabilitiesOf(w.d).has("tags"), false, "the reconciler learns tags are unsupported here");
    const before = w.calls();
    for (let i = 0; i < 50; i++)
      await assert.rejects(() => w.d.setTags!(ref, ["web"], desired.ownerUID), UnsupportedError);
    for (let i = 0; i < 10; i++) await w.d.get(ref);
    assert.equal(w.calls() - before, 10, "50 refused setTags sent nothing; 10 gets read only the scalet");
    assert.equal(w.sim.requestCounts.get("POST /v1/scalets/tags") ?? 0, 0);
  });

  test("the absence of tags is re-probed after an hour, once", async () => {
    let now = 1_000_000;
    const http = new HttpClientFactory({ logger: createLogger({ level: "silent" }) });
    try {
      const client = http.client({
        provider: "vscale",
        baseUrl: w.sim.url,
        credentialKey: "t",
        secrets: [],
        defaultHeaders: { "x-token": w.sim.credentials.token ?? "" },
      });
      const tags = new VscaleTags(new VscaleApi(client), () => now);
      const probes = () => w.sim.requestCounts.get("GET /v1/scalets/tags") ?? 0;
      const before = probes();
      assert.deepEqual(await tags.of(12601), []);
      assert.equal(tags.absent, true);
      now += TAGS_REPROBE_MS - 1;
      assert.deepEqual(await tags.of(12601), []);
      assert.equal(probes() - before, 1, "remembered for the hour");
      now += 2;
      assert.equal(tags.absent, false);
      assert.deepEqual(await tags.of(12601), []);
      assert.equal(probes() - before, 2, "probed again after it");
    } finally {
      await http.close();
    }
  });

  test("the document's upgrade answer (updated, unlocked, old rplan) is waited on, never upgraded twice", async () => {
    const { ref } = await running({ plan: "medium" });
    await w.d.resize!(ref, "large");
    const right = await w.d.get(ref);
    assert.equal(right?.providerStatus, "updated");
    assert.equal(right?.plan, "medium", "the answer still shows the old rplan, as the document does");
    assert.equal(right?.transitional, true, "its task runs: wait");
    const m = await observeUntil(w.d, ref, (o) => o?.plan === "large" && !o.transitional);
    assert.equal(m?.phase, "Running", "`updated` + active: running");
    assert.equal(w.sim.requestCounts.get("POST /v1/scalets/:id/upgrade"), 1);
    await w.d.stop!(ref);
    assert.equal((await observeUntil(w.d, ref, settled("stopped")))?.phase, "Stopped");
  });

  test("a failed create and a failed restart are read from GET /tasks (no Vscale-Task-Id header)", async () => {
    w.sim.faults.onCreated = (id) => {
      w.sim.failNextTask(id);
    };
    let id: string;
    try {
      ({ id } = await w.d.create(w.desired()));
    } finally {
      w.sim.faults.onCreated = () => undefined;
    }
    const failed = await observeUntil(w.d, { id, providerData: {} }, (o) => o?.phase === "Failed");
    assert.match(failed?.message ?? "", /scalet_create .*failed/);
    assert.equal(failed?.transitional, false);
    const { ref } = await running();
    w.sim.failNextTask(ref.id);
    await w.d.reboot!(ref);
    const m = await observeUntil(
      w.d,
      ref,
      (o) => o !== undefined && !o.transitional && /failed/.test(o.message ?? ""),
    );
    assert.match(m?.message ?? "", /scalet_restart .*failed/);
  });

  test("a deletion whose task failed is not waited on forever: it is sent again and finishes", async () => {
    const { ref } = await running();
    w.sim.failNextTask(ref.id);
    await w.d.delete(ref);
    const back = await observeUntil(w.d, ref, (o) => o !== undefined && !o.transitional);
    assert.notEqual(back?.phase, "Deleting");
    assert.match(back?.message ?? "", /scalet_delete .*failed/);
    await w.d.delete(ref);
    await observeUntil(w.d, ref, (o) => o === undefined, "gone");
  });

  test("without /sshkeys a public key is refused before anything is created; a numeric key id is sent as is", async () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host";
    const desired = w.desired({ sshKeys: [key] });
    await assert.rejects(
      () => w.d.create(desired),
      (e: unknown) => e instanceof UnsupportedError && /no \/sshkeys endpoint.*numeric id/.test(e.message),
    );
    assert.equal(w.sim.vms().filter((v) => v.ownerUID === desired.ownerUID).length, 0);
    const { id } = await w.d.create(w.desired({ sshKeys: ["92"] }));
    assert.ok(w.sim.vms().some((v) => v.id === id));
  });

  test("without /rplans the document's rplans validate the plan and order downgrades; images and locations are left to the create", async () => {
    await assert.rejects(
      () => w.d.validate(w.desired({ plan: "gigantic" })),
      (e: unknown) =>
        e instanceof InvalidRequestError && /small, medium, large, huge, monster.*document/.test(e.message),
    );
    await w.d.validate(w.desired({ image: "some-image-only-vscale-knows" }));
    await assert.rejects(
      () => w.d.create(w.desired({ image: "no-such-image" })),
      (e: unknown) => e instanceof InvalidRequestError && e.terminal && /Unknown image/.test(e.message),
    );
    const { ref } = await running({ plan: "huge" });
    await assert.rejects(
      () => w.d.resize!(ref, "medium"),
      (e: unknown) => e instanceof InvalidRequestError && e.reason === "DowngradeRefused",
    );
  });

  test("a 404 on a write is an error, never success", async () => {
    const gone = { id: "999999", providerData: {} };
    await assert.rejects(() => w.d.start!(gone), NotFoundError);
    await assert.rejects(() => w.d.resize!(gone, "large"), NotFoundError);
    await w.d.delete(gone); // deleting what does not exist is what delete wants
  });

  test("an id that is no ctid is refused by name and nothing is sent", async () => {
    const before = w.calls();
    for (const bad of ["../sshkeys", "12600/stop", "12600?x=1", "", "0", "1e5", " 12"]) {
      const ref = { id: bad, providerData: {} };
      const named = (e: unknown) =>
        e instanceof InvalidRequestError &&
        e.reason === "InvalidInstanceId" &&
        e.message.includes(JSON.stringify(bad));
      await assert.rejects(() => w.d.get(ref), named);
      await assert.rejects(() => w.d.stop!(ref), named);
      await assert.rejects(() => w.d.delete(ref), named);
      await assert.rejects(() => w.d.setTags!(ref, [], "x"), named);
    }
    assert.equal(w.calls(), before);
  });

  test("crash between the create and the status write: a restarted driver finds the one scalet by owner", async () => {
    const desired = w.desired();
    let made: string | undefined;
    w.sim.faults.onCreated = (id) => {
      made = id;
    };
    try {
      await w.driver().create(desired); // its answer is "lost": the operator died here
    } finally {
      w.sim.faults.onCreated = () => undefined;
    }
    assert.ok(made);
    const restarted = w.driver();
    assert.ok(capabilitiesOf(restarted).has("findByOwner"));
    const found = await restarted.findByOwner!(desired.ownerUID, desired);
    assert.deepEqual(
      found.map((f) => f.id),
      [made],
    );
    // An API that cannot list never answers "none" (which would create a second scalet).
    const blind = w.driver(w.sim.credentials, `${w.sim.url}/no-such-prefix`);
    await assert.rejects(() => blind.findByOwner!(desired.ownerUID, desired), UnsupportedError);
  });
});
