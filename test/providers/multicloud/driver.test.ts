import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../../src/observability/logger.ts";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import {
  factory,
  MulticloudOptionsSchema,
  type MulticloudOptions,
} from "../../../src/providers/multicloud/index.ts";
import type { DesiredMachine, DesiredTemplate, Driver } from "../../../src/providers/driver.ts";
import { InvalidRequestError, UnauthorizedError } from "../../../src/providers/errors.ts";
import { desiredMachine, observeUntil, testHttp } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";
import { startMulticloudSimulator, type MulticloudSimulator } from "../../sim/multicloud/index.ts";

let http: HttpClientFactory;
const options = MulticloudOptionsSchema.parse({ cloud: "aliyun" });
let uid = 0;

function driverFor(
  sim: MulticloudSimulator,
  credentials: Record<string, string> = {},
): Driver<MulticloudOptions> {
  return factory.create({
    credentials,
    secretName: undefined,
    endpoint: sim.url,
    http,
    logger: createLogger({ level: "silent" }),
  });
}
function desired(over: Partial<DesiredMachine<MulticloudOptions>> = {}): DesiredMachine<MulticloudOptions> {
  return desiredMachine(SIMULATORS.multicloud.spec, options, { ownerUID: `mc-${String(++uid)}`, ...over });
}
function template(
  over: Partial<DesiredTemplate<MulticloudOptions>> = {},
): DesiredTemplate<MulticloudOptions> {
  return {
    ownerUID: "tpl-uid",
    namespace: "ns",
    name: "pool",
    region: "cn-beijing",
    plan: "1Core-2GB",
    image: "centos7u2_64_40G_cloudinit_20160728.raw",
    sshKeys: [],
    tags: [],
    options,
    providerData: {},
    ...over,
  };
}

let sim: MulticloudSimulator;
let d: Driver<MulticloudOptions>;
before(async () => {
  http = testHttp();
  sim = await startMulticloudSimulator({ faults: { transitionMs: 20 } });
  d = driverFor(sim);
});
after(async () => {
  await http.close();
  await sim.close();
});

describe("multicloud driver", () => {
  test("status integers: 0 pending and 3 initialising are transitional, 1 is Running", async () => {
    const { id } = await d.create(desired());
    const ref = { id, providerData: {} };
    const first = await d.get(ref);
    assert.equal(first?.phase, "Provisioning");
    assert.equal(first?.transitional, true);
    const m = await observeUntil(d, ref, (o) => o?.phase === "Running");
    assert.equal(m?.providerStatus, "1 (success)");
    assert.ok((m?.addresses.private.length ?? 0) > 0);
    sim.setStatus(id, 8);
    assert.equal((await d.get(ref))?.phase, "Running", "8: in the service pool, still up");
    sim.setStatus(id, 7);
    const failed = await d.get(ref);
    assert.equal(failed?.phase, "Failed");
    assert.match(failed?.message ?? "", /status 7: error/);
  });

  test("an instance whose initialisation times out (4) is Failed; start retries it", async () => {
    sim.failNextInit();
    const { id } = await d.create(desired());
    const ref = { id, providerData: {} };
    const m = await observeUntil(d, ref, (o) => o?.phase === "Failed");
    assert.match(m?.message ?? "", /initialisation timed out/);
    await d.start(ref);
    await observeUntil(d, ref, (o) => o?.phase === "Running");
  });

  test("an instance without a template gets a private remote template, deleted with it", async () => {
    const want = desired();
    const { id, providerData } = await d.create(want);
    assert.ok(providerData?.privateClusterId);
    assert.ok(sim.clusters().some((c) => c.name === `cio-${want.ownerUID}`));
    await d.delete({ id, providerData: providerData ?? {} });
    assert.ok(!sim.clusters().some((c) => c.name === `cio-${want.ownerUID}`));
    await observeUntil(d, { id, providerData: {} }, (o) => o === undefined);
  });

  test("remote templates: created once (found again by name), replaced on change, recreated when gone", async () => {
    const first = await d.syncTemplate!(template());
    const again = await d.syncTemplate!(template());
    assert.deepEqual(again, first, "a repeated sync (e.g. after a crash) reuses the template");
    assert.equal(await d.templateExists!(first), true);
    const changed = await d.syncTemplate!(template({ plan: "4Cores-8GB", providerData: first }));
    assert.notEqual(changed.clusterId, first.clusterId);
    assert.equal(await d.templateExists!(first), false, "the old template was deleted");
    assert.equal(sim.clusters().find((c) => String(c.id) === changed.clusterId)?.instanceType, "4Cores-8GB");
    sim.dropCluster(Number(changed.clusterId));
    assert.equal(await d.templateExists!(changed), false);
    const recreated = await d.syncTemplate!(template({ plan: "4Cores-8GB", providerData: changed }));
    assert.equal(await d.templateExists!(recreated), true);
    await d.deleteTemplate!(recreated);
    await d.deleteTemplate!(recreated);
    assert.equal(await d.templateExists!(recreated), false);
  });

  test("instances of a shared template are told apart by their correlation id (even after a restart)", async () => {
    const tpl = await d.syncTemplate!(template({ ownerUID: "shared" }));
    const a = desired({ providerData: tpl });
    const b = desired({ providerData: tpl });
    const ia = await d.create(a);
    const ib = await d.create(b);
    const fresh = driverFor(sim); // knows nothing: must ask the logs
    assert.deepEqual(
      (await fresh.findByOwner(a.ownerUID, a)).map((m) => m.id),
      [ia.id],
    );
    assert.deepEqual(
      (await fresh.findByOwner(b.ownerUID, b)).map((m) => m.id),
      [ib.id],
    );
    assert.deepEqual(await fresh.findByOwner("nobody", desired({ providerData: tpl })), []);
    assert.equal(ia.providerData?.privateClusterId, undefined, "no private template when a template exists");
  });

  test("the spec is checked against the catalogues with the valid choices named; a stop is refused up front", async () => {
    await assert.rejects(
      () => d.create(desired({ options: { ...options, dataDiskNum: 4, zone: "nowhere-9" } })),
      (e: unknown) => e instanceof InvalidRequestError && /no zone "nowhere-9"/.test(e.message),
    );
    await assert.rejects(
      () => d.validate(desired({ powerState: "Stopped" })),
      (e: unknown) => e instanceof InvalidRequestError && /cannot stop/.test(e.message),
    );
    await assert.rejects(
      () => d.validate(desired({ options: { ...options, cloud: "gcp" } })),
      (e: unknown) => e instanceof InvalidRequestError && /aliyun, aws, openstack/.test(e.message),
    );
  });

  test("the source code's route spellings are found and remembered", async () => {
    const src = await startMulticloudSimulator({ faults: { transitionMs: 10 }, routes: "source" });
    try {
      const sd = driverFor(src);
      src.failNextInit();
      const { id } = await sd.create(desired());
      const ref = { id, providerData: {} };
      await observeUntil(sd, ref, (o) => o?.phase === "Failed");
      await sd.start(ref);
      await sd.start(ref);
      assert.equal(src.requestCounts.get("GET /v1/start/:id"), 1, "the document's spelling was tried once");
      assert.equal(src.requestCounts.get("POST /v1/instance/start/:id"), 2);
    } finally {
      await src.close();
    }
  });

  test("with a token configured, it is sent as a Bearer token; a wrong one is Unauthorized", async () => {
    const secured = await startMulticloudSimulator({ token: "mc-token-123456" });
    try {
      assert.deepEqual(
        await driverFor(secured, { token: "mc-token-123456" }).findByOwner("x", desired()),
        [],
      );
      await assert.rejects(
        () => driverFor(secured, { token: "wrong-token" }).findByOwner("x", desired()),
        (e: unknown) => e instanceof UnauthorizedError && !e.message.includes("wrong-token"),
      );
    } finally {
      await secured.close();
    }
  });
});
