import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import type { ZomroOptions } from "../../../src/providers/zomro/index.ts";
import { elems, scalar } from "../../../src/providers/zomro/api.ts";
import type { Driver } from "../../../src/providers/driver.ts";
import { QuotaOrBillingError, TransientError, UnauthorizedError } from "../../../src/providers/errors.ts";
import { observeUntil, testHttp } from "../harness.ts";
import { startZomroSimulator, type ZomroSimulator } from "../../sim/zomro/index.ts";
import { zomroDesired as desired, zomroDriver, zomroOptions as options } from "./kit.ts";

let sim: ZomroSimulator;
let http: HttpClientFactory;
let d: Driver<ZomroOptions>;

const driver = (credentials: Record<string, string> = sim.credentials): Driver<ZomroOptions> =>
  zomroDriver(sim, http, credentials);

before(async () => {
  sim = await startZomroSimulator({ faults: { transitionMs: 20 } });
  http = testHttp();
  d = driver();
});
after(async () => {
  await http.close();
  await sim.close();
});

describe("BILLmanager envelope", () => {
  test("scalars come as {$: value}; elem is an array, one object, or absent", () => {
    assert.equal(scalar({ $: "5116804" }), "5116804");
    assert.equal(scalar(2), "2");
    assert.equal(scalar(undefined), undefined);
    assert.deepEqual(elems({ elem: [{ id: { $: "1" } }, { id: { $: "2" } }] }).length, 2);
    assert.deepEqual(elems({ elem: { id: { $: "1" } } }), [{ id: { $: "1" } }]);
    assert.deepEqual(elems({}), []);
  });
});

describe("zomro driver", () => {
  test("an order goes 1 ordered -> 5 processing -> 2 active; the hostname carries owner and cluster", async () => {
    const want = desired();
    await d.validate(want);
    const { id } = await d.create(want);
    const ref = { id, providerData: {} };
    const m = await observeUntil(d, ref, (o) => o?.providerStatus === "2");
    assert.equal(m?.phase, "Running");
    assert.equal(m?.ownerUID, want.ownerUID);
    assert.equal(m?.name, `cio-${want.ownerUID}.${want.clusterID}`);
    assert.equal(m.ownerCluster, want.clusterID);
    assert.equal(
      sim.previews.get("v2.instances.order.param") ?? 0,
      1,
      "only the catalogue read was a preview",
    );
  });

  test("findByOwner copes with one service (elem as an object) and none (no elem)", async () => {
    const alone = await startZomroSimulator({ faults: { transitionMs: 10 } });
    try {
      const one = zomroDriver(alone, http);
      assert.deepEqual(await one.findByOwner!("x", desired()), []);
      const want = desired();
      const { id } = await one.create(want);
      assert.deepEqual(
        (await one.findByOwner!(want.ownerUID, want)).map((m) => m.id),
        [id],
      );
    } finally {
      await alone.close();
    }
  });

  test("an expired session is renewed once, transparently", async () => {
    await d.findByOwner!("warm-up", desired());
    const logins = sim.requestCounts.get("auth") ?? 0;
    sim.expireSessions();
    assert.deepEqual(await d.findByOwner!("nobody", desired()), []);
    assert.equal((sim.requestCounts.get("auth") ?? 0) - logins, 1);
  });

  test("a wrong password is a terminal Unauthorized that never shows the password", async () => {
    await assert.rejects(
      () =>
        driver({ username: sim.credentials.username ?? "", password: "not-the-password" }).findByOwner!(
          "x",
          desired(),
        ),
      (e: unknown) => e instanceof UnauthorizedError && e.terminal && !e.message.includes("not-the-password"),
    );
  });

  test("a short balance is a terminal billing error carrying BILLmanager's message", async () => {
    const before = sim.balance;
    sim.balance = 1;
    try {
      await assert.rejects(
        () => d.create(desired({ plan: "3604" })),
        (e: unknown) => e instanceof QuotaOrBillingError && e.terminal && /Not enough money/.test(e.message),
      );
    } finally {
      sim.balance = before;
    }
  });

  test("stop suspends (3 -> Stopped), start activates; a state conflict is retryable", async () => {
    const { id } = await d.create(desired());
    const ref = { id, providerData: {} };
    await observeUntil(d, ref, (o) => o?.providerStatus === "2");
    await assert.rejects(() => d.start!(ref), TransientError, "starting an active service is a conflict");
    await d.stop!(ref);
    const s = await observeUntil(d, ref, (o) => o?.providerStatus === "3");
    assert.equal(s?.phase, "Stopped");
    await d.start!(ref);
    await observeUntil(d, ref, (o) => o?.providerStatus === "2");
  });

  test("function names are configurable (vds instead of instances)", async () => {
    const vds = {
      ...options,
      functions: { ...options.functions, list: "vds", get: "vds.edit", delete: "vds.delete" },
    };
    const want = desired({ options: vds });
    await d.validate(want);
    const { id } = await d.create(want);
    assert.deepEqual(
      (await d.findByOwner!(want.ownerUID, want)).map((m) => m.id),
      [id],
    );
    assert.ok((sim.requestCounts.get("vds") ?? 0) > 0);
    await d.delete({ id, providerData: {}, options: vds });
    assert.ok((sim.requestCounts.get("vds.delete") ?? 0) > 0);
  });
});
