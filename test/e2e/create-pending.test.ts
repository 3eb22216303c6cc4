/**
 * Crash-safe create for providers that cannot look VMs up by owner: the operator records a
 * create-pending marker before the create call and, when it finds the marker without a VM id,
 * asks a human instead of creating a second VM. Runs the real m2s driver with its findByOwner
 * capability hidden, which is exactly how such a provider looks to the reconciler.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startWorld, CloudInstanceResource } from "./harness.ts";
import { cond } from "./harness.ts";
import { ANNOTATION_CREATE_PENDING, type CloudInstance } from "../../src/api/index.ts";
import { definition as m2s } from "../../src/providers/m2s/index.ts";
import type { ProviderDefinition } from "../../src/providers/definition.ts";

const withoutFindByOwner: ProviderDefinition = {
  ...(m2s as ProviderDefinition),
  create(ctx) {
    const driver = m2s.create(ctx) as ReturnType<ProviderDefinition["create"]>;
    // Without the method the driver lacks the capability (capabilitiesOf). Methods are bound to
    // the real driver: its private fields do not exist on a proxy.
    return new Proxy(driver, {
      get(target, prop) {
        if (prop === "findByOwner") return undefined;
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  },
};

type World = Awaited<ReturnType<typeof startWorld>>;
let w: World;
const vmsOf = (o: CloudInstance) => w.m2s.vms().filter((v) => v.ownerUID === o.metadata.uid);

before(async () => {
  w = await startWorld();
  await w.startOperator({ drivers: { m2s: withoutFindByOwner } });
});
after(async () => {
  await w.close();
});

describe("create-pending marker (provider without lookup by owner)", () => {
  test("a normal create sets and then clears the marker, leaving exactly one VM", async () => {
    await w.instance("plain");
    const o = await w.waitFor("plain", (x) => cond(x, "Ready")?.status === "True", "Ready");
    assert.equal(o.metadata.annotations?.[ANNOTATION_CREATE_PENDING], undefined);
    assert.equal(vmsOf(o).length, 1);
  });

  test("an ambiguous create failure keeps the marker: no second create, a condition asks a human", async () => {
    w.m2s.faults.failOperation = "POST /v1/instances";
    await w.instance("ambiguous");
    const o = await w.waitFor(
      "ambiguous",
      (x) => cond(x, "Synced")?.reason === "CreatePendingUnverifiable",
      "CreatePendingUnverifiable",
    );
    assert.ok(o.metadata.annotations?.[ANNOTATION_CREATE_PENDING]);
    assert.match(cond(o, "Synced")?.message ?? "", /external-id/);
    assert.equal(vmsOf(o).length, 0, "the failed create made nothing and nothing was retried blindly");
    const creates = w.m2s.requestCounts.get("POST /v1/instances") ?? 0;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      w.m2s.requestCounts.get("POST /v1/instances") ?? 0,
      creates,
      "no create while the marker stands",
    );

    // The human checked the provider, found nothing, and removes the marker: the operator creates.
    await w.kube.patch(CloudInstanceResource, "e2e", "ambiguous", {
      metadata: { annotations: { [ANNOTATION_CREATE_PENDING]: null } },
    });
    const done = await w.waitFor(
      "ambiguous",
      (x) => cond(x, "Ready")?.status === "True",
      "Ready after the marker went",
    );
    assert.equal(vmsOf(done).length, 1);
  });

  test("a refused create (unknown image) clears the marker, so fixing the spec just works", async () => {
    await w.instance("refused", { image: "windows-95" });
    const o = await w.waitFor(
      "refused",
      (x) => /Image inconnue/.test(cond(x, "Synced")?.message ?? ""),
      "the provider's refusal on the status",
    );
    assert.equal(cond(o, "Synced")?.status, "False");
    assert.equal(o.metadata.annotations?.[ANNOTATION_CREATE_PENDING], undefined, "the marker was cleared");
    await w.kube.patch(CloudInstanceResource, "e2e", "refused", { spec: { image: "debian-12" } });
    const fixed = await w.waitFor(
      "refused",
      (x) => cond(x, "Ready")?.status === "True",
      "Ready after the fix",
    );
    assert.equal(vmsOf(fixed).length, 1);
  });
});
