/**
 * The m2s driver against an API that implements exactly what m2s.txt shows (the simulator's
 * strict profile): each test is one way the driver used to rely on more than the document
 * (issue 17), or one of its own guards (ids, endpoint, unknown statuses).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { definition, OWNER_TAG_PREFIX, vmName, type M2sOptions } from "../../../src/providers/m2s/index.ts";
import type { DesiredMachine, Driver } from "../../../src/providers/driver.ts";
import { InvalidRequestError, ProviderError, TransientError } from "../../../src/providers/errors.ts";
import { captureLogs, desiredMachine, observeUntil } from "../harness.ts";
import { startM2sSimulator, type M2sSimulator } from "../../sim/m2s/index.ts";
import { SIMULATORS } from "../../sim/all.ts";

let sim: M2sSimulator;
let http: HttpClientFactory;
const { logger, lines: logLines } = captureLogs();

/** Reads until the driver says the VM is gone (the simulator's delete takes a transition). */
async function eventuallyGone(
  d: Driver<M2sOptions>,
  ref: { id: string; providerData: Record<string, string> },
) {
  for (let i = 0; i < 200; i++) {
    if ((await d.get(ref)) === undefined) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${ref.id} never read as gone`);
}

function driver(endpoint = sim.url): Driver<M2sOptions> {
  return definition.create({ credentials: sim.credentials, secretName: "ns/m2s", endpoint, http, logger });
}
const desired = (over: Partial<DesiredMachine<M2sOptions>> = {}): DesiredMachine<M2sOptions> =>
  desiredMachine(SIMULATORS.m2s.spec, { resizeReboot: true }, over);
const calls = (op: string): number => sim.requestCounts.get(op) ?? 0;
const totalCalls = (): number => [...sim.requestCounts.values()].reduce((a, b) => a + b, 0);

/** A VM made behind the driver's back, as another tool or an older operator would. */
async function rawCreate(name: string, tags: string[]): Promise<string> {
  const res = await fetch(`${sim.url}/instances`, {
    method: "POST",
    headers: { authorization: `Bearer ${sim.credentials.apiKey!}`, "content-type": "application/json" },
    body: JSON.stringify({ name, plan: "starter", region: "fr-par-1", image: "debian-12", tags }),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { data: { id: string } }).data.id;
}

before(async () => {
  sim = await startM2sSimulator({ profile: "strict", faults: { transitionMs: 20 } });
  http = new HttpClientFactory({ logger, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
});
after(async () => {
  await http.close();
  await sim.close();
});

describe("m2s driver against the document's minimum (strict profile)", () => {
  test("list items carry no tags, exactly as the document shows", async () => {
    await driver().create(desired({ ownerUID: "uid-shape" }));
    const res = await fetch(`${sim.url}/instances`, {
      headers: { authorization: `Bearer ${sim.credentials.apiKey!}` },
    });
    const body = (await res.json()) as { data: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(body.data[0] ?? {}).sort(), [
      "created_at",
      "id",
      "ip_address",
      "name",
      "plan",
      "region",
      "status",
      "updated_at",
    ]);
  });

  test("crash between create and status write: a restarted driver finds the one VM, with one list and one read per candidate", async () => {
    const owner = "uid-crash-0b9f";
    const d = desired({ ownerUID: owner, name: "web" });
    // Noise: other VMs, two of them with the name older operators gave (ns-web) but another owner.
    for (let i = 0; i < 30; i++)
      await driver().create(desired({ ownerUID: `noise-${String(i)}`, name: `n${String(i)}` }));
    await rawCreate("ns-web", [`${OWNER_TAG_PREFIX}someone-else`]);
    await rawCreate("ns-web", []);
    // The operator dies after the provider made the VM and before the id reached status: the
    // answer never arrives (the hook throws, the simulator answers 500 instead).
    let born: string | undefined;
    sim.faults.onCreated = (id) => {
      born = id;
      throw new Error("operator killed here");
    };
    try {
      await assert.rejects(() => driver().create(d), ProviderError);
    } finally {
      sim.faults.onCreated = () => undefined;
    }
    assert.ok(born, "the provider did create the VM");
    const listsBefore = calls("GET /v1/instances");
    const readsBefore = calls("GET /v1/instances/:id");
    const found = await driver().findByOwner!(owner, d);
    assert.deepEqual(
      found.map((m) => m.id),
      [born],
    );
    assert.equal(found[0]?.ownerUID, owner);
    assert.equal(calls("GET /v1/instances") - listsBefore, 1, "one page of list (33 VMs < 100)");
    assert.equal(
      calls("GET /v1/instances/:id") - readsBefore,
      3,
      "a read for the marked VM and the two legacy-named ones, none for the 30 others",
    );
    assert.deepEqual(await driver().findByOwner!("uid-nobody", desired({ ownerUID: "uid-nobody" })), []);
  });

  test("a VM named before the mark existed, or whose name the provider cut, is still found by its tag", async () => {
    const owner = "uid-legacy";
    const id = await rawCreate("ns-old", [`${OWNER_TAG_PREFIX}${owner}`]);
    const found = await driver().findByOwner!(owner, desired({ ownerUID: owner, name: "old" }));
    assert.deepEqual(
      found.map((m) => m.id),
      [id],
    );
    const long = desired({ ownerUID: "uid-cut", name: "a-rather-long-instance-name" });
    const cut = await rawCreate(vmName(long).slice(0, 20), [`${OWNER_TAG_PREFIX}uid-cut`]);
    assert.deepEqual(
      (await driver().findByOwner!("uid-cut", long)).map((m) => m.id),
      [cut],
    );
  });

  test("the VM name is readable and carries the mark; long names are cut, the mark is kept", () => {
    const name = vmName({ namespace: "team", name: "web", ownerUID: "uid-1" });
    assert.match(name, /^team-web-[0-9a-f]{8}$/);
    const long = vmName({ namespace: "n".repeat(40), name: "x".repeat(60), ownerUID: "uid-1" });
    assert.equal(long.length, 63);
    assert.ok(long.endsWith(name.slice(-9)));
  });

  test("every transition reaches its steady phase, and delete is confirmed by a 404", async () => {
    const d = driver();
    const { id } = await d.create(desired({ ownerUID: "uid-ops" }));
    const ref = { id, providerData: {} };
    const steady = (phase: string) => (m: { phase: string; transitional: boolean } | undefined) =>
      m?.phase === phase && !m.transitional;
    await observeUntil(d, ref, steady("Running"));
    await d.resize!(ref, "performance");
    await observeUntil(d, ref, (m) => steady("Running")(m) && m?.plan === "performance");
    await d.rebuild!(ref, "debian-12", desired());
    await observeUntil(d, ref, (m) => steady("Running")(m) && m?.image === "debian-12");
    await d.reboot!(ref);
    await observeUntil(d, ref, steady("Running"));
    await d.stop!(ref);
    await observeUntil(d, ref, steady("Stopped"));
    await d.setTags!(ref, ["x"], "uid-ops");
    assert.deepEqual((await d.get(ref))?.tags, ["x"]);
    await d.delete(ref);
    assert.equal(await d.get(ref), undefined);
    await d.delete(ref);
  });

  test("an unknown status is waited on and flagged, so that a deletion is not held by it", async () => {
    const d = driver();
    const { id } = await d.create(desired({ ownerUID: "uid-odd" }));
    const ref = { id, providerData: {} };
    await observeUntil(d, ref, (m) => m?.providerStatus === "running");
    sim.mutate(id, { status: "migrating" });
    const m = await d.get(ref);
    assert.equal(m?.transitional, true, "never acted on");
    // The reconciler reports a flagged status after a bounded wait and never waits on it to delete.
    assert.equal(m?.unknownStatus, true, JSON.stringify(m));
    assert.match(m?.message ?? "", /migrating/);
    assert.equal((await d.get(ref))?.unknownStatus, true);
    sim.mutate(id, { status: "running" });
    assert.equal((await d.get(ref))?.unknownStatus, undefined, "a known status is not flagged");
    sim.mutate(id, { status: "migrating" });
    await d.delete(ref);
    assert.equal(await d.get(ref), undefined);
  });

  test("an id not of the m2s form is refused before any request", async () => {
    const d = driver();
    for (const bad of ["../instances", "i-1/stop", "i-1?x=1", "abc", "i-", "i-%2e%2e"]) {
      const before = totalCalls();
      const ref = { id: bad, providerData: {} };
      for (const call of [() => d.get(ref), () => d.delete(ref), () => d.stop!(ref)]) {
        await assert.rejects(
          call,
          (e: unknown) => e instanceof InvalidRequestError && e.message.includes(JSON.stringify(bad)),
        );
      }
      assert.equal(totalCalls(), before, `nothing sent for ${bad}`);
    }
  });

  test("a wrong endpoint (404 everywhere) never reads as 'gone' and never as 'no VM of this owner'", async () => {
    const { id } = await driver().create(desired({ ownerUID: "uid-endpoint" }));
    const wrong = driver(sim.url.replace(/\/v1$/, "/v2"));
    const ref = { id, providerData: {} };
    await assert.rejects(() => wrong.get(ref), TransientError);
    await assert.rejects(() => wrong.delete(ref), TransientError);
    await assert.rejects(() => wrong.findByOwner!("uid-endpoint", desired()), ProviderError);
    await assert.rejects(() => wrong.resize!(ref, "enterprise"), ProviderError);
    assert.ok(
      sim.vms().some((v) => v.id === id),
      "the VM is still there",
    );
  });

  test("one list vouches for the endpoint: a second instance's 404 on the same driver sends no list", async () => {
    const d = driver();
    const gone = async (ownerUID: string) => {
      const { id } = await d.create(desired({ ownerUID }));
      await d.delete({ id, providerData: {} });
      return { id, providerData: {} };
    };
    const first = await gone("uid-confirm-1");
    const second = await gone("uid-confirm-2");
    const lists = calls("GET /v1/instances");
    // Whatever the simulator's delete transition, a read sees the VM gone once it has passed.
    await eventuallyGone(d, first);
    assert.equal(calls("GET /v1/instances") - lists, 1, "the first 404 is confirmed by one list");
    await eventuallyGone(d, second);
    assert.equal(calls("GET /v1/instances") - lists, 1, "the second 404 needs no list of its own");
  });

  test("the provider's {message} errors reach the caller, typed, without the key", async () => {
    await assert.rejects(
      () => driver().create(desired({ ownerUID: "uid-bad-image", image: "windows-95" })),
      (e: unknown) => e instanceof InvalidRequestError && /Image inconnue/.test(e.message),
    );
    const { id } = await driver().create(desired({ ownerUID: "uid-409" }));
    await assert.rejects(
      () => driver().start!({ id, providerData: {} }),
      (e: unknown) => e instanceof TransientError && /impossible/.test(e.message),
    );
    assert.ok(!logLines.join("").includes(sim.credentials.apiKey!));
  });
});
