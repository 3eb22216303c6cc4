import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Metrics } from "../../../src/observability/metrics.ts";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { DriverPool } from "../../../src/providers/pool.ts";
import { definition, OWNER_TAG_PREFIX, type M2sOptions } from "../../../src/providers/m2s/index.ts";
import type { DesiredMachine, Driver } from "../../../src/providers/driver.ts";
import { CredentialsError, InvalidRequestError, UnauthorizedError } from "../../../src/providers/errors.ts";
import { captureLogs, observeUntil } from "../harness.ts";
import { startM2sSimulator, type M2sSimulator } from "../../sim/m2s/index.ts";
import { SIM_PROFILES, type SimProfile } from "../../sim/common.ts";

function desired(over: Partial<DesiredMachine<M2sOptions>> = {}): DesiredMachine<M2sOptions> {
  return {
    ownerUID: "uid-1",
    clusterID: "testcluster",
    namespace: "ns",
    name: "web",
    region: "fr-par-1",
    plan: "business",
    image: "ubuntu-22.04",
    sshKeys: [],
    tags: ["web"],
    powerState: "Running",
    options: { resizeReboot: true },
    providerData: {},
    ...over,
  };
}

for (const profile of SIM_PROFILES) describeOn(profile);

function describeOn(profile: SimProfile): void {
  let sim: M2sSimulator;
  let http: HttpClientFactory;
  const { logger, lines: logLines } = captureLogs();
  const metrics = new Metrics();

  function driver(credentials: Record<string, string> = sim.credentials): Driver<M2sOptions> {
    return definition.create({ credentials, secretName: "ns/m2s", endpoint: sim.url, http, logger });
  }

  describe(`m2s driver against the m2s simulator (${profile} profile)`, () => {
    before(async () => {
      sim = await startM2sSimulator({ profile, faults: { transitionMs: 20 } });
      http = new HttpClientFactory({ logger, metrics, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
    });
    after(async () => {
      await http.close();
      await sim.close();
    });

    test("create -> Running, owner tag hidden from tags, addresses and usage observed", async () => {
      const d = driver();
      const { id, observed } = await d.create(desired({ ownerUID: "uid-create" }));
      assert.equal(observed?.phase, "Provisioning");
      assert.equal(observed?.transitional, true);
      const ref = { id, providerData: {} };
      await observeUntil(d, ref, (m) => m?.providerStatus === "running");
      const m = await d.get(ref);
      assert.equal(m?.phase, "Running");
      assert.deepEqual(m?.tags, ["web"]);
      assert.equal(m?.ownerUID, "uid-create");
      assert.ok((m?.addresses.public.length ?? 0) > 0);
      assert.equal(typeof m?.usage?.cpuPercent, "number");
      assert.deepEqual(
        sim
          .vms()
          .filter((v) => v.ownerUID === "uid-create")
          .map((v) => v.id),
        [id],
      );
    });

    test("findByOwner pages through the list and finds exactly the owner's VM", async () => {
      const d = driver();
      for (let i = 0; i < 120; i++) await d.create(desired({ ownerUID: `bulk-${i}`, name: `b${i}` }));
      const { id } = await d.create(desired({ ownerUID: "uid-needle" }));
      const found = await d.findByOwner!("uid-needle", desired());
      assert.deepEqual(
        found.map((m) => m.id),
        [id],
      );
      assert.deepEqual(await d.findByOwner!("nobody", desired()), []);
    });

    test("stop, start, hard stop, resize, rebuild, tags, delete", async () => {
      const d = driver();
      const { id } = await d.create(desired({ ownerUID: "uid-ops" }));
      const ref = { id, providerData: {} };
      await observeUntil(d, ref, (m) => m?.providerStatus === "running");
      await d.stop!(ref);
      await observeUntil(d, ref, (m) => m?.providerStatus === "stopped");
      await d.start!(ref);
      await observeUntil(d, ref, (m) => m?.providerStatus === "running");
      await d.hardStop!(ref);
      assert.equal((await d.get(ref))?.phase, "Stopped");
      await d.resize!(ref, "performance");
      assert.equal((await d.get(ref))?.plan, "performance");
      await d.rebuild!(ref, "debian-12", desired());
      await observeUntil(d, ref, (m) => m?.providerStatus === "stopped");
      assert.equal((await d.get(ref))?.image, "debian-12");
      await d.setTags!(ref, ["a", "b"], "uid-ops");
      const tagged = await d.get(ref);
      assert.deepEqual(tagged?.tags, ["a", "b"]);
      assert.equal(tagged?.ownerUID, "uid-ops", "the owner tag survives a tag update");
      await d.delete(ref);
      await observeUntil(d, ref, (m) => m?.providerStatus === undefined);
      await d.delete(ref);
      assert.equal(await d.get({ id: "i-unknown", providerData: {} }), undefined);
    });

    test("validate names the valid plans; the provider's own 422 is an InvalidRequestError", async () => {
      const d = driver();
      await assert.rejects(
        () => d.validate(desired({ plan: "huge" })),
        (e: unknown) => e instanceof InvalidRequestError && /starter, business/.test(e.message),
      );
      await assert.rejects(
        () => d.create(desired({ image: "windows-95" })),
        (e: unknown) => e instanceof InvalidRequestError && /Image inconnue/.test(e.message),
      );
    });

    test("a wrong key is Unauthorized; a Secret without apiKey names the Secret and key", async () => {
      await assert.rejects(
        () => driver({ apiKey: "wrong-key-123" }).findByOwner!("x", desired()),
        UnauthorizedError,
      );
      const pool = new DriverPool({ registry: { m2s: definition }, http, logger });
      assert.throws(
        () => pool.get({ provider: "m2s", endpoint: sim.url, secretName: "ns/m2s-creds", credentials: {} }),
        (e: unknown) =>
          e instanceof CredentialsError && e.message.includes('Secret "ns/m2s-creds" has no key "apiKey"'),
      );
    });

    test("a 503 on a GET is retried; a create is not retried on 503", async () => {
      const d = driver();
      sim.faults.failNext = 1;
      assert.deepEqual(await d.findByOwner!("nobody", desired()), []);
      const before = sim.vms().length;
      sim.faults.failNext = 1;
      await assert.rejects(() => d.create(desired({ ownerUID: "uid-503" })));
      assert.equal(sim.vms().length, before, "no VM was created by a retried create");
    });

    test("the API key never appears in logs", () => {
      assert.ok(logLines.length > 0);
      assert.ok(!logLines.join("").includes(sim.credentials.apiKey!));
    });
  });
}

test("owner tag prefix is stable (existing VMs are found by it after upgrades)", () => {
  assert.equal(OWNER_TAG_PREFIX, "cio-owner:");
});
