import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../util/seeded-random.ts";
import { AccountGate, decideAdmission, type AdmissionFacts } from "../../src/providers/admission.ts";
import { admissionScope } from "../../src/providers/http/admission-scope.ts";
import { RequestLimiter } from "../../src/util/transport/limiter.ts";
import { QueueWaitRefusedError } from "../../src/util/transport/errors.ts";
import { ManualClock } from "../controller/runtime/manual-clock.ts";

const facts = (over: Partial<AdmissionFacts> = {}): AdmissionFacts => ({
  now: 1000,
  inFlight: 0,
  cap: 2,
  parkedAhead: 0,
  allInFlight: 0,
  borrowLimit: 0,
  borrowMaxMs: 1000,
  budgets: [{ available: 10, waiting: 0, qps: 10, burst: 10 }],
  committed: 0,
  expectedCalls: 1,
  avgReconcileMs: 200,
  nextAt: 0,
  minDelayMs: 20,
  maxParkMs: 60_000,
  ...over,
});

describe("decideAdmission (pure)", () => {
  test("admits with budget and a free share, reserving the calls a reconcile is expected to make", () => {
    assert.deepEqual(decideAdmission(facts({ expectedCalls: 2.2 })), { admit: true, reserve: 3 });
  });

  test("an account with no limiter seen yet is admitted on its share alone", () => {
    assert.deepEqual(decideAdmission(facts({ budgets: [] })), { admit: true, reserve: 1 });
  });

  test("no tokens: requeued for the time the missing tokens take to refill, not an error backoff", () => {
    const d = decideAdmission(facts({ budgets: [{ available: 0.5, waiting: 0, qps: 10, burst: 10 }] }));
    assert.equal(d.admit, false);
    if (d.admit) return;
    assert.equal(d.reason, "budget");
    assert.equal(d.retryAfterMs, 50, "half a token at 10 qps");
    assert.equal(d.nextAt, 1000 + 50 + 100, "the next refused key comes one token later");
  });

  test("tokens promised to reconciles in flight and requests queued outside admission are not free", () => {
    const budgets = [{ available: 3, waiting: 1, qps: 10, burst: 10 }];
    assert.equal(decideAdmission(facts({ budgets, committed: 1 })).admit, true);
    assert.equal(decideAdmission(facts({ budgets, committed: 2 })).admit, false);
    assert.equal(decideAdmission(facts({ budgets, committed: 0, expectedCalls: 3 })).admit, false);
  });

  test("a reconcile needing more calls than the bucket holds still gets in once the bucket is full", () => {
    const full = [{ available: 5, waiting: 0, qps: 10, burst: 5 }];
    assert.deepEqual(decideAdmission(facts({ budgets: full, expectedCalls: 9 })), {
      admit: true,
      reserve: 5,
    });
  });

  test("the in-flight cap: the account's share of the workers is taken; the fallback requeue grows with the keys ahead", () => {
    const d = decideAdmission(facts({ inFlight: 2, cap: 2, avgReconcileMs: 3000 }));
    assert.equal(d.admit, false);
    if (d.admit) return;
    assert.equal(d.reason, "inflight");
    assert.equal(d.retryAfterMs, 20 + 3000, "twice a slot's turn (3 s / 2 slots)");
    const behind = decideAdmission(facts({ inFlight: 2, cap: 2, avgReconcileMs: 3000, parkedAhead: 9 }));
    assert.ok(!behind.admit && behind.retryAfterMs === 20 + 30_000);
    const far = decideAdmission(facts({ inFlight: 2, cap: 2, avgReconcileMs: 3000, parkedAhead: 99 }));
    assert.ok(!far.admit && far.retryAfterMs === 60_000, "never longer than the park limit");
  });

  test("borrowing: a quick account past its cap is admitted while a cap's worth of workers stays free; a slow one never", () => {
    const past = { inFlight: 3, cap: 3, borrowLimit: 7, avgReconcileMs: 50 };
    assert.equal(decideAdmission(facts({ ...past, allInFlight: 6 })).admit, true);
    assert.equal(
      decideAdmission(facts({ ...past, allInFlight: 7 })).admit,
      false,
      "the last 3 workers are others'",
    );
    assert.equal(
      decideAdmission(facts({ ...past, allInFlight: 3, avgReconcileMs: 5000 })).admit,
      false,
      "a slow endpoint holds its share, no more",
    );
  });

  test("refused keys are paced one behind the other: no storm of keys coming back at once", () => {
    let nextAt = 0;
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const d = decideAdmission(
        facts({ nextAt, budgets: [{ available: 0, waiting: 0, qps: 10, burst: 10 }] }),
      );
      assert.equal(d.admit, false);
      if (d.admit) return;
      delays.push(d.retryAfterMs);
      nextAt = d.nextAt;
    }
    assert.deepEqual(delays, [100, 200, 300, 400, 500]);
  });

  test("never a requeue shorter than the floor", () => {
    const d = decideAdmission(facts({ budgets: [{ available: 0.999, waiting: 0, qps: 1000, burst: 10 }] }));
    assert.equal(d.admit, false);
    if (!d.admit) assert.equal(d.retryAfterMs, 20);
  });
});

describe("AccountGate", () => {
  const limiterOn = (clock: ManualClock, qps = 10, burst = 4): RequestLimiter =>
    new RequestLimiter({ qps, burst, maxConcurrent: 100, clock });

  test("caps the account's reconciles in flight; a released ticket frees the slot (idempotently)", () => {
    const clock = new ManualClock();
    const gate = new AccountGate({ maxInFlight: 2, now: () => clock.monotonic() });
    const a = gate.tryAdmit();
    const b = gate.tryAdmit();
    const c = gate.tryAdmit();
    assert.equal(a.admitted && b.admitted, true);
    assert.equal(c.admitted, false);
    if (!c.admitted) assert.equal(c.reason, "inflight");
    if (a.admitted) {
      a.ticket.release();
      a.ticket.release();
    }
    assert.equal(gate.inFlight, 1);
    assert.equal(gate.tryAdmit().admitted, true);
  });

  test("a key refused for a slot is woken as soon as one frees, first come first woken, once", () => {
    const clock = new ManualClock();
    const gate = new AccountGate({ maxInFlight: 1, now: () => clock.monotonic() });
    const woken: string[] = [];
    const wake = (k: string): void => {
      woken.push(k);
    };
    const a = gate.tryAdmit({ key: "ns/a", wake });
    assert.ok(a.admitted);
    assert.equal(gate.tryAdmit({ key: "ns/b", wake }).admitted, false);
    assert.equal(gate.tryAdmit({ key: "ns/c", wake }).admitted, false);
    assert.equal(gate.tryAdmit({ key: "ns/b", wake }).admitted, false, "b asks again: keeps its place");
    assert.equal(gate.parked, 2);
    a.ticket.release();
    assert.deepEqual(woken, ["ns/b"]);
    const b = gate.tryAdmit({ key: "ns/b", wake });
    assert.ok(b.admitted);
    b.ticket.release();
    assert.deepEqual(woken, ["ns/b", "ns/c"]);
    assert.equal(gate.parked, 1, "c is woken, in line until it asks again");
    const c = gate.tryAdmit({ key: "ns/c", wake });
    assert.ok(c.admitted);
    assert.equal(gate.parked, 0);
    c.ticket.release();
    assert.deepEqual(woken, ["ns/b", "ns/c"], "nobody else to wake");
  });

  test("a key woken that never asks again (its object deleted) leaves the line after the park limit", () => {
    const clock = new ManualClock();
    const gate = new AccountGate({ maxInFlight: 1, maxParkMs: 100, now: () => clock.monotonic() });
    const woken: string[] = [];
    const wake = (k: string): void => {
      woken.push(k);
    };
    const a = gate.tryAdmit({ key: "ns/a", wake });
    assert.ok(a.admitted);
    gate.tryAdmit({ key: "ns/gone", wake });
    gate.tryAdmit({ key: "ns/c", wake });
    a.ticket.release();
    assert.deepEqual(woken, ["ns/gone"]);
    clock.advance(200);
    const d = gate.tryAdmit({ key: "ns/d", wake });
    assert.ok(d.admitted, "a free slot: admitted, and the next in line is woken");
    assert.deepEqual(woken, ["ns/gone"], "the slot is taken again: nobody else woken yet");
    d.ticket.release();
    assert.deepEqual(woken, ["ns/gone", "ns/c"]);
    assert.equal(gate.parked, 1, "only c (woken) is left; the deleted object's key is gone");
  });

  test("with thousands in line, woken ones among them, the line is the first-come order of a plain scan", () => {
    // The reference: the line as a Map in arrival order, waking the first key not yet woken;
    // a woken key that asks again and is refused keeps its place.
    const cap = 3;
    const model = new Map<string, { woken: boolean }>();
    let modelInFlight = 0;
    const modelWoken: string[] = [];
    const modelWakeNext = (): void => {
      if (modelInFlight >= cap) return;
      for (const [key, e] of model)
        if (!e.woken) {
          e.woken = true;
          modelWoken.push(key);
          return;
        }
    };
    const modelAsk = (key: string): boolean => {
      const inLine = model.get(key);
      if (inLine) inLine.woken = false;
      else model.set(key, { woken: false });
      if (modelInFlight >= cap) return false;
      model.delete(key);
      modelInFlight++;
      modelWakeNext();
      return true;
    };

    const gate = new AccountGate({ maxInFlight: cap, now: () => 0 });
    const woken: string[] = [];
    const wake = (k: string): void => {
      woken.push(k);
    };
    const held: { release(): void }[] = [];
    const random = seededRandom(3);
    for (let step = 0; step < 30_000; step++) {
      const r = random();
      if (r < 0.6) {
        // A new key, or one already in line asking again (woken or not).
        const key = `ns/k${String(Math.floor(random() * (step < 15_000 ? 4_000 : 500)))}`;
        const a = gate.tryAdmit({ key, wake });
        assert.equal(a.admitted, modelAsk(key), `step ${String(step)}: ${key}`);
        if (a.admitted) held.push(a.ticket);
      } else if (held.length > 0) {
        held.splice(Math.floor(random() * held.length), 1)[0]?.release();
        modelInFlight--;
        modelWakeNext();
      }
      assert.equal(gate.parked, model.size);
    }
    assert.ok(woken.length > 1_000, `${String(woken.length)} wakes`);
    assert.deepEqual(woken, modelWoken);
  });

  test("gates share the workers: one account borrows, the others keep their share", async () => {
    const { SharedWorkers } = await import("../../src/providers/admission.ts");
    const shared = new SharedWorkers(4, 1);
    const a = new AccountGate({ maxInFlight: 1, shared });
    const b = new AccountGate({ maxInFlight: 1, shared });
    const held = [a.tryAdmit(), a.tryAdmit(), a.tryAdmit()];
    assert.deepEqual(
      held.map((x) => x.admitted),
      [true, true, true],
      "A alone, quick: it borrows up to workers - cap",
    );
    assert.equal(a.tryAdmit().admitted, false, "the last worker is kept for others");
    assert.equal(b.tryAdmit().admitted, true, "B gets its share at once");
    for (const x of held) if (x.admitted) x.ticket.release();
  });

  test("learns the account's limiter from the requests of an admitted reconcile, then admits on its budget", async () => {
    const clock = new ManualClock();
    const limiter = limiterOn(clock, 10, 2);
    const gate = new AccountGate({ maxInFlight: 10, now: () => clock.monotonic() });
    const first = gate.tryAdmit();
    assert.ok(first.admitted);
    await first.ticket.run(async () => {
      // What HttpClient.request does for every provider request.
      const wait = admissionScope.getStore()?.onRequest(limiter, false);
      (await limiter.acquire(undefined, wait))();
      const again = admissionScope.getStore()?.onRequest(limiter, false);
      (await limiter.acquire(undefined, again))();
    });
    first.ticket.release();
    assert.ok(gate.expectedCalls > 1, "two calls seen");
    const next = gate.tryAdmit();
    assert.equal(next.admitted, false, "the bucket is empty");
    if (next.admitted) return;
    assert.equal(next.reason, "budget");
    assert.ok(next.retryAfterMs >= 100 && next.retryAfterMs <= 300, `${String(next.retryAfterMs)} ms`);
    clock.advance(next.retryAfterMs);
    assert.equal(gate.tryAdmit().admitted, true, "admitted once the time asked for has passed");
  });

  test("inside an admission a request that would wait is refused at once, leaving no waiter and taking no token", async () => {
    const clock = new ManualClock();
    const limiter = limiterOn(clock, 10, 1);
    (await limiter.acquire())();
    const gate = new AccountGate({ maxInFlight: 10, now: () => clock.monotonic() });
    const t = gate.tryAdmit();
    assert.ok(t.admitted);
    await assert.rejects(
      t.ticket.run(async () => {
        const wait = admissionScope.getStore()?.onRequest(limiter, false);
        return limiter.acquire(undefined, wait);
      }),
      (err: unknown) => err instanceof QueueWaitRefusedError && err.retryAfterMs === 100,
    );
    assert.equal(limiter.waiting, 0);
    const delay = t.ticket.refused(100);
    assert.ok(delay >= 100, "requeued for the limiter's own estimate");
    t.ticket.release();
    assert.ok(gate.expectedCalls >= 1);
  });

  test("after a mutation the reconcile is allowed to finish: later requests wait their turn", async () => {
    const clock = new ManualClock();
    const limiter = limiterOn(clock, 10, 10);
    const gate = new AccountGate({ maxInFlight: 10, now: () => clock.monotonic() });
    const t = gate.tryAdmit();
    assert.ok(t.admitted);
    await t.ticket.run(() => {
      const scope = admissionScope.getStore();
      assert.equal(scope?.onRequest(limiter, false), 5, "a read may wait a few ms");
      assert.equal(
        scope?.onRequest(limiter, true),
        5,
        "the mutation itself may still be refused (nothing sent)",
      );
      assert.equal(scope?.onRequest(limiter, false), undefined, "after it: no refusal");
      return Promise.resolve();
    });
    t.ticket.release();
  });

  test("past the bucket's size a reconcile may wait one token's time, so it can finish at all", async () => {
    const clock = new ManualClock();
    const limiter = limiterOn(clock, 10, 2);
    const gate = new AccountGate({ maxInFlight: 10, now: () => clock.monotonic() });
    const t = gate.tryAdmit();
    assert.ok(t.admitted);
    await t.ticket.run(() => {
      const scope = admissionScope.getStore();
      assert.equal(scope?.onRequest(limiter, false), 5);
      assert.equal(scope?.onRequest(limiter, false), 5);
      assert.equal(scope?.onRequest(limiter, false), 105);
      return Promise.resolve();
    });
    t.ticket.release();
  });

  test("outside any admission nothing changes: the limiter queues the request", async () => {
    assert.equal(admissionScope.getStore(), undefined);
    const clock = new ManualClock();
    const limiter = limiterOn(clock, 10, 1);
    (await limiter.acquire())();
    let started = false;
    void limiter.acquire().then((release) => {
      started = true;
      release();
    });
    assert.equal(limiter.waiting, 1);
    assert.equal(limiter.estimateWaitMs(), 200, "a third request waits behind the queued one");
    clock.advance(100);
    await new Promise((r) => setImmediate(r));
    assert.equal(started, true);
  });
});

describe("a provider request inside an admission, over HTTP", () => {
  test("is refused before it is sent when the account's budget is spent: a ThrottledError the reconciler requeues on", async () => {
    const { createServer } = await import("node:http");
    const { HttpClientFactory } = await import("../../src/providers/http/client.ts");
    const { ThrottledError, findThrottled, TransientError } = await import("../../src/providers/errors.ts");
    const { createLogger } = await import("../../src/observability/logger.ts");
    let received = 0;
    const server = createServer((_req, res) => {
      received++;
      res.setHeader("content-type", "application/json");
      res.end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const factory = new HttpClientFactory({
      logger: createLogger({ level: "silent" }),
      defaultLimits: { qps: 1, burst: 2, maxConcurrent: 4 },
    });
    try {
      const http = factory.client({
        provider: "m2s",
        baseUrl: `http://127.0.0.1:${String(port)}/v1`,
        credentialKey: "account-a",
        secrets: [],
      });
      // Another caller (outside any admission) spends the burst.
      for (let i = 0; i < 2; i++) await http.request({ method: "GET", path: "/servers", operation: "list" });
      const gate = new AccountGate({ maxInFlight: 4 });
      const t = gate.tryAdmit();
      assert.ok(t.admitted);
      const err = await t.ticket
        .run(async () => {
          await http.request({ method: "GET", path: "/servers", operation: "list" });
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      t.ticket.release();
      assert.ok(err instanceof ThrottledError, String(err));
      assert.ok(err instanceof TransientError, "drivers treat it as a call that got no answer");
      assert.equal(findThrottled(new Error("wrapped", { cause: err })), err);
      const after = err.retryAfterMs ?? 0;
      assert.ok(after > 5 && after <= 1000, `the time until the next token at 1 qps (${String(after)} ms)`);
      assert.equal(received, 2, "the refused request was never sent");
      const next = gate.tryAdmit();
      assert.equal(next.admitted, false, "the gate knows the account's limiter now: no budget, no admission");
    } finally {
      await factory.close();
      server.close();
    }
  });
});
