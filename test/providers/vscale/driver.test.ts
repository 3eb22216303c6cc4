import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../../src/observability/logger.ts";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { factory, type VscaleOptions } from "../../../src/providers/vscale/index.ts";
import type { DesiredMachine, Driver, ObservedMachine } from "../../../src/providers/driver.ts";
import {
  InvalidRequestError,
  QuotaOrBillingError,
  TransientError,
  UnauthorizedError,
  UnsupportedError,
} from "../../../src/providers/errors.ts";
import { desiredMachine, observeUntil, testHttp } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";
import { startVscaleSimulator, type VscaleSimulator } from "../../sim/vscale/index.ts";

let sim: VscaleSimulator;
let http: HttpClientFactory;
let d: Driver<VscaleOptions>;

function driver(credentials: Record<string, string> = sim.credentials): Driver<VscaleOptions> {
  return factory.create({
    credentials,
    secretName: "ns/vscale",
    endpoint: sim.url,
    http,
    logger: createLogger({ level: "silent" }),
  });
}
let uid = 0;
const options: VscaleOptions = { catalogueTtlSeconds: 600 };
function desired(over: Partial<DesiredMachine<VscaleOptions>> = {}): DesiredMachine<VscaleOptions> {
  return desiredMachine(SIMULATORS.vscale.spec, options, { ownerUID: `vs-${String(++uid)}`, ...over });
}
const settled = (status: string) => (m: ObservedMachine | undefined) =>
  m?.providerStatus === status && !m.transitional;

before(async () => {
  sim = await startVscaleSimulator({ faults: { transitionMs: 30 } });
  http = testHttp();
  d = driver();
});
after(async () => {
  await http.close();
  await sim.close();
});

describe("vscale driver", () => {
  test("a new scalet is `defined` and locked (transitional), then `started`; do_start follows powerState", async () => {
    const { id, observed } = await d.create(desired());
    assert.equal(observed?.providerStatus, "defined");
    assert.equal(observed?.transitional, true);
    const ref = { id, providerData: {} };
    const m = await observeUntil(d, ref, settled("started"));
    assert.equal(m?.phase, "Running");
    assert.ok((m?.addresses.public.length ?? 0) > 0);
    const stopped = await d.create(desired({ powerState: "Stopped" }));
    const s = await observeUntil(d, { id: stopped.id, providerData: {} }, settled("stopped"));
    assert.equal(s?.phase, "Stopped");
  });

  test("public keys in sshKeys are registered through /sshkeys once and then reused", async () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host";
    await d.create(desired({ sshKeys: [key] }));
    await d.create(desired({ sshKeys: [key] }));
    assert.equal(sim.sshKeys().filter((k) => k.key === key).length, 1);
    const posts = sim.requestCounts.get("POST /v1/sshkeys") ?? 0;
    assert.equal(posts, 1);
  });

  test("validation names the valid rplans, images and locations, and checks image x rplan", async () => {
    await assert.rejects(
      () => d.validate(desired({ plan: "gigantic" })),
      (e: unknown) =>
        e instanceof InvalidRequestError && /small, medium, large, huge, monster/.test(e.message),
    );
    await assert.rejects(
      () => d.validate(desired({ region: "nyc1" })),
      (e: unknown) => e instanceof InvalidRequestError && /spb0, msk0/.test(e.message),
    );
    await assert.rejects(
      () => d.validate(desired({ plan: "small", image: "centos_7.1_64_001_master" })),
      (e: unknown) => e instanceof InvalidRequestError && /not offered with rplan "small"/.test(e.message),
    );
    const before = sim.requestCounts.get("GET /v1/rplans") ?? 0;
    await d.validate(desired());
    assert.equal(sim.requestCounts.get("GET /v1/rplans") ?? 0, before, "the catalogue is cached");
  });

  test("a downgrade is refused before any call, with reason DowngradeRefused", async () => {
    const { id } = await d.create(desired({ plan: "large" }));
    const ref = { id, providerData: {} };
    await observeUntil(d, ref, settled("started"));
    await assert.rejects(
      () => d.resize(ref, "small", { allowReboot: true }),
      (e: unknown) => e instanceof InvalidRequestError && e.reason === "DowngradeRefused" && e.terminal,
    );
    assert.equal(sim.requestCounts.get("POST /v1/scalets/:id/upgrade") ?? 0, 0);
  });

  test("a read-only token can read but a write is a terminal Unauthorized saying so", async () => {
    const ro = driver({ token: sim.readOnlyToken });
    assert.deepEqual(await ro.findByOwner("nobody", desired()), []);
    await assert.rejects(
      () => ro.create(desired()),
      (e: unknown) => e instanceof UnauthorizedError && e.terminal && /read-only/.test(e.message),
    );
  });

  test("billing: Stopped with the reason; starting it is a billing error", async () => {
    const { id } = await d.create(desired());
    const ref = { id, providerData: {} };
    await observeUntil(d, ref, settled("started"));
    sim.mutate(id, { status: "billing" });
    const m = await d.get(ref);
    assert.equal(m?.phase, "Stopped");
    assert.match(m?.message ?? "", /non-payment/);
    await assert.rejects(() => d.start(ref), QuotaOrBillingError);
  });

  test("locked means wait; an action on a locked scalet is retryable; a failed task is reported", async () => {
    const { id } = await d.create(desired());
    const ref = { id, providerData: {} };
    const first = await d.get(ref);
    assert.equal(first?.transitional, true, "locked while being created");
    await assert.rejects(() => d.stop(ref, { hard: false }), TransientError);
    await observeUntil(d, ref, settled("started"));
    sim.failNextTask(id);
    await d.reboot(ref);
    const m = await observeUntil(d, ref, (o) => o !== undefined && !o.transitional);
    assert.match(m?.message ?? "", /scalet_restart .*failed/);
  });

  test("tags are kept through the tags API; the owner mark is the name and survives", async () => {
    const want = desired({ tags: ["web"] });
    const { id } = await d.create(want);
    const ref = { id, providerData: {} };
    await observeUntil(d, ref, settled("started"));
    await d.setTags(ref, ["web", "prod"], want.ownerUID);
    let m = await d.get(ref);
    assert.deepEqual([...(m?.tags ?? [])].sort(), ["prod", "web"]);
    await d.setTags(ref, ["prod"], want.ownerUID);
    m = await d.get(ref);
    assert.deepEqual(m?.tags, ["prod"]);
    assert.equal(m?.ownerUID, want.ownerUID);
    assert.match(m?.name ?? "", /^ns-web--cio-/);
  });

  test("rebuild reinstalls the scalet's own image; another image is Unsupported", async () => {
    const { id } = await d.create(desired());
    const ref = { id, providerData: {} };
    await observeUntil(d, ref, settled("started"));
    await assert.rejects(
      () => d.rebuild(ref, "debian_8.1_64_001_master", desired()),
      (e: unknown) => e instanceof UnsupportedError && /own image/.test(e.message),
    );
    await d.rebuild(ref, "ubuntu_14.04_64_002_master", desired());
    await observeUntil(d, ref, settled("started"));
    assert.equal(sim.requestCounts.get("PATCH /v1/scalets/:id/rebuild"), 1);
  });

  test("errors carry the Vscale-Error-Message text", async () => {
    await assert.rejects(
      () => d.create(desired({ plan: "nope" })),
      (e: unknown) => e instanceof InvalidRequestError && /Unknown rplan \(field rplan\)/.test(e.message),
    );
  });
});
