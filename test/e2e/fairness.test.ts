import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startWorld, ready, type Operator } from "./harness.ts";
import { CloudInstanceResource, SecretResource } from "../../src/kube/resources.ts";
import { startM2sSimulator, type M2sSimulator } from "../sim/m2s/index.ts";
import { credentialsSecret } from "../sim/all.ts";
import type { Metrics } from "../../src/observability/metrics.ts";

/**
 * Fairness between accounts (issue #22), end to end over HTTP: two m2s accounts (two
 * simulators, two credentials Secrets), account A with a queue of objects it cannot serve
 * quickly, account B with one object. B's instance must not wait behind A's queue. The
 * assertions count A's requests at the moment B is Ready (ordering, not timing): without
 * fairness, B's key is handed to a worker only after every A key queued before it had its
 * turn, each spending at least one request at A.
 */

type World = Awaited<ReturnType<typeof startWorld>>;
let w: World | undefined;
let simA: M2sSimulator | undefined;

afterEach(async () => {
  await w?.close();
  await simA?.close();
  w = undefined;
  simA = undefined;
});

async function throttled(metrics: Metrics, reason: string): Promise<number> {
  const m = await metrics.providerThrottled.get();
  return m.values.filter((v) => v.labels.reason === reason).reduce((a, v) => a + v.value, 0);
}

async function twoAccounts(
  faultsA: Parameters<typeof startM2sSimulator>[0],
  objectsOnA: number,
  operator: (world: World) => Promise<Operator>,
): Promise<{ aRequestsAtBReady: number; op: Operator; a: M2sSimulator }> {
  w = await startWorld();
  const world = w;
  const a = (simA = await startM2sSimulator({ ...faultsA, apiKey: "m2s-account-a-key-0123456789" }));
  await world.kube.create(
    SecretResource,
    credentialsSecret({ name: "account-a", namespace: "e2e" }, a.credentials) as never,
  );
  const onA = { name: "m2s" as const, credentialsSecretRef: { name: "account-a" }, endpoint: a.url };
  // A's queue first, while no operator runs: every A key is in the work queue before B's.
  await Promise.all(
    Array.from({ length: objectsOnA }, (_, i) =>
      world.instance(`a-${String(i).padStart(3, "0")}`, { provider: onA }),
    ),
  );
  await world.instance("b-first");
  const op = await operator(world);
  await world.waitFor("b-first", ready, "account B's instance Ready while A has a queue");
  const aRequestsAtBReady = a.arrived();
  return { aRequestsAtBReady, op, a };
}

describe("fairness between accounts, end to end over HTTP", () => {
  test("an account whose budget is spent does not hold the workers: B is Ready before A's queue has had its turn", async () => {
    const n = 60;
    const { aRequestsAtBReady, op } = await twoAccounts({ faults: { transitionMs: 30 } }, n, (world) =>
      world.startOperator({
        // The in-flight share out of the way: the budget alone must keep A from the workers.
        args: ["--max-concurrent-reconciles=4", "--provider-max-inflight-per-account=4"],
        // 4 requests/s per account: A's 60 objects need at least 30 s of A's budget.
        providerLimits: { default: { qps: 4, burst: 2, maxConcurrent: 16 } },
      }),
    );
    assert.ok(
      aRequestsAtBReady < n,
      `B became Ready after ${String(aRequestsAtBReady)} requests at A (fewer than A's ${String(n)} objects: B did not wait behind them)`,
    );
    assert.ok((await throttled(op.metrics, "budget")) > 0, "A's reconciles were put off for budget");
    const errors = await op.metrics.reconcileErrors.get();
    assert.equal(
      errors.values.reduce((a, v) => a + v.value, 0),
      0,
      "a reconcile put off for budget is not an error",
    );
  });

  test("a slow endpoint holds no more than its share of the workers: B is Ready while A's requests crawl", async () => {
    const n = 30;
    const { aRequestsAtBReady, op, a } = await twoAccounts(
      { faults: { transitionMs: 30, latencyMs: 500 } },
      n,
      // 4 workers: A may hold one of them (the default share, a quarter).
      (world) => world.startOperator({ args: ["--max-concurrent-reconciles=4"] }),
    );
    assert.ok(
      aRequestsAtBReady < n,
      `B became Ready after ${String(aRequestsAtBReady)} requests at A (fewer than A's ${String(n)} objects)`,
    );
    assert.ok((await throttled(op.metrics, "inflight")) > 0, "A's reconciles beyond its share were put off");
    // A still converges: its objects are served one at a time, not dropped.
    const aReady = async (): Promise<number> =>
      (await w?.kube.list(CloudInstanceResource, { namespace: "e2e" }))?.items.filter(
        (o) => o.metadata.name?.startsWith("a-") === true && ready(o),
      ).length ?? 0;
    const before = a.arrived();
    for (let i = 0; i < 100 && a.arrived() === before; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(a.arrived() > before, "A keeps being served");
    assert.ok((await aReady()) <= n);
  });
});
