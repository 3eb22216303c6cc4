// Every provider's CloudInstance lifecycle on a real kube-apiserver: the real operator process
// (with the RBAC of deploy/manifests, so a missing permission is a 403 here) against each
// provider's simulator. The in-memory twin is test/e2e/providers-lifecycle.test.ts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { SIMULATORS } from "../sim/all.ts";
import { CloudInstanceResource } from "../../src/kube/resources.ts";
import type { CloudInstance, ProviderName } from "../../src/api/index.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";
import { SKIP } from "./envtest.ts";
import { forbiddenLines, ready, startRealWorld, until, type RealWorld } from "./world.ts";

let w: RealWorld;

const vmsOf = (p: ProviderName, o: CloudInstance) =>
  (w.sims.get(p)?.vms() ?? []).filter((v) => v.ownerUID === o.metadata.uid);

describe("real API server: the lifecycle of every provider", { skip: SKIP }, () => {
  before(async () => {
    w = await startRealWorld({ namespace: "e2e" });
    w.startOperator();
  });
  after(async () => {
    await w?.close();
  });

  describe("all providers at once", { concurrency: true }, () => {
    for (const provider of PROVIDER_NAMES) {
      const kit = SIMULATORS[provider];
      test(`${provider}: create -> Running${kit.canStop ? " -> stop -> start" : ""}${kit.resizeTo ? " -> resize" : ""} -> delete, one VM throughout`, async () => {
        const name = `${provider}-life`;
        const patch = (spec: Record<string, unknown>) =>
          w.kube.patch(CloudInstanceResource, "e2e", name, { spec });
        await w.instance(provider, name);
        let o = await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Running", "Running and Ready");
        assert.ok(o.status?.instanceID);
        assert.equal(o.status?.observedGeneration, o.metadata.generation);
        assert.ok(o.metadata.finalizers?.length, "the operator holds a finalizer");
        assert.equal(vmsOf(provider, o).length, 1);
        if (kit.canStop) {
          await patch({ powerState: "Stopped" });
          await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Stopped", "Stopped");
          await patch({ powerState: "Running" });
          await w.waitFor(name, (x) => ready(x) && x.status?.phase === "Running", "Running again");
        }
        if (kit.resizeTo) {
          await patch({ plan: kit.resizeTo });
          o = await w.waitFor(
            name,
            (x) => ready(x) && x.status?.plan === kit.resizeTo,
            `resized to ${kit.resizeTo}`,
          );
          assert.equal(vmsOf(provider, o)[0]?.plan, kit.resizeTo);
        }
        assert.equal(vmsOf(provider, o).length, 1, "still exactly one VM");
        await w.kube.delete(CloudInstanceResource, "e2e", name);
        await w.gone(name);
        await until(
          () => vmsOf(provider, o).length,
          (n) => n === 0,
          `${provider} VM deleted`,
        );
      });
    }
  });

  test("the operator's ServiceAccount (deploy/manifests RBAC) never got a 403", async () => {
    // The identity is not an admin: RBAC really applies to it.
    const canDelete = await w.env
      .kubectl(["auth", "can-i", "create", "clusterrolebindings"], { kubeconfig: w.env.operatorKubeconfig })
      .catch((err: unknown) => String(err));
    assert.match(canDelete, /\bno\b/);
    assert.match(w.logs(), /"level":/, "the operator logged");
    assert.deepEqual(forbiddenLines(w.logs()), []);
  });
});
