import { test } from "node:test";
import assert from "node:assert/strict";
import { WorkQueue } from "../../../src/controller/runtime/workqueue.ts";
import {
  BucketRateLimiter,
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from "../../../src/controller/runtime/rate-limiter.ts";
import { Metrics } from "../../../src/observability/metrics.ts";
import { ManualClock } from "./manual-clock.ts";

function queue(clock = new ManualClock(), metrics?: Metrics): WorkQueue {
  return new WorkQueue({ name: "test", clock, rateLimiter: defaultControllerRateLimiter(clock), metrics });
}

test("dedupes a key added several times before it is taken", async () => {
  const q = queue();
  q.add("ns/a");
  q.add("ns/a");
  q.add("ns/b");
  assert.equal(q.len(), 2);
  assert.equal(await q.get(), "ns/a");
  assert.equal(await q.get(), "ns/b");
  assert.equal(q.len(), 0);
});

test("stingy: a key being processed is not handed out again, but an add during processing is kept", async () => {
  const q = queue();
  q.add("ns/a");
  const key = await q.get();
  assert.equal(key, "ns/a");
  q.add("ns/a");
  assert.equal(q.len(), 0, "not queued while processing");
  let second: string | undefined;
  void q.get().then((k) => (second = k));
  await Promise.resolve();
  assert.equal(second, undefined);
  q.done("ns/a");
  await Promise.resolve();
  assert.equal(second, "ns/a", "re-queued on done because it was added while processing");
});

test("done without a pending add does not re-queue", async () => {
  const q = queue();
  q.add("k");
  await q.get();
  q.done("k");
  assert.equal(q.len(), 0);
});

test("a waiting get resolves when a key is added, and undefined on shutdown", async () => {
  const q = queue();
  const first = q.get();
  q.add("x");
  assert.equal(await first, "x");
  const second = q.get();
  q.shutDown();
  assert.equal(await second, undefined);
  q.add("y");
  assert.equal(await q.get(), undefined, "no work after shutdown");
});

test("addAfter keeps the earliest due time for a key", async () => {
  const clock = new ManualClock();
  const q = queue(clock);
  q.addAfter("k", 1000);
  q.addAfter("k", 5000);
  q.addAfter("k", 300);
  assert.equal(q.delayedLen(), 1);
  clock.advance(299);
  assert.equal(q.len(), 0);
  clock.advance(1);
  assert.equal(q.len(), 1);
  assert.equal(await q.get(), "k");
  clock.advance(10_000);
  assert.equal(q.len(), 0, "the later timers were dropped");
});

test("delayed keys wait under one timer and each comes out at its own due time", async () => {
  const clock = new ManualClock();
  const q = queue(clock);
  // Due at 1..5,000 ms in a shuffled order, with some keys moved earlier (the earlier wins).
  const due = new Map<string, number>();
  for (let i = 0; i < 5_000; i++) {
    const key = `k${String((i * 7919) % 5_000)}`;
    due.set(key, 1 + ((i * 104_729) % 5_000));
    q.addAfter(key, due.get(key) ?? 0);
  }
  for (let i = 0; i < 5_000; i += 10) {
    const key = `k${String(i)}`;
    const earlier = Math.max(1, Math.floor((due.get(key) ?? 0) / 2));
    q.addAfter(key, earlier);
    due.set(key, earlier);
  }
  assert.equal(clock.pending, 1, "one timer");
  assert.equal(q.delayedLen(), 5_000);
  const out: string[] = [];
  for (let t = 1; t <= 5_000; t++) {
    clock.advance(1);
    while (q.len() > 0) {
      const key = await q.get();
      assert.ok(key !== undefined);
      assert.equal(due.get(key), t, `${key} came out at ${String(t)} ms`);
      out.push(key);
      q.done(key);
    }
  }
  assert.equal(out.length, 5_000);
  assert.equal(q.delayedLen(), 0);
  assert.equal(clock.pending, 0, "no timer left once nothing waits");
});

test("addRateLimited backs off per item exponentially; forget resets", async () => {
  const clock = new ManualClock();
  const q = queue(clock);
  for (let i = 0; i < 4; i++) {
    q.addRateLimited("k");
    clock.advance(1000);
    assert.equal(await q.get(), "k");
    q.done("k");
  }
  assert.deepEqual(clock.requested, [5, 10, 20, 40]);
  assert.equal(q.numRequeues("k"), 4);
  q.forget("k");
  assert.equal(q.numRequeues("k"), 0);
  q.addRateLimited("k");
  assert.equal(clock.requested.at(-1), 5);
});

test("item backoff caps at 1000 s", () => {
  const l = new ItemExponentialRateLimiter(5, 1_000_000);
  let last = 0;
  for (let i = 0; i < 40; i++) last = l.when("k");
  assert.equal(last, 1_000_000);
});

test("the overall bucket delays retries beyond the burst, at qps", () => {
  const clock = new ManualClock();
  const b = new BucketRateLimiter(10, 3, clock);
  assert.deepEqual([b.when("a"), b.when("b"), b.when("c")], [0, 0, 0]);
  assert.equal(b.when("d"), 100);
  assert.equal(b.when("e"), 200);
  clock.advance(1000);
  assert.equal(b.when("f"), 0, "refilled");
});

test("max-of limiter takes the longest delay", () => {
  const clock = new ManualClock();
  const l = new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 1000), new BucketRateLimiter(1, 1, clock));
  assert.equal(l.when("a"), 5);
  assert.equal(l.when("b"), 1000, "bucket empty: 1 s at 1 qps");
});

test("metrics: depth, adds, retries and durations", async () => {
  const clock = new ManualClock();
  const metrics = new Metrics();
  const q = queue(clock, metrics);
  q.add("a");
  q.add("b");
  q.add("a");
  const depth = await metrics.queueDepth.get();
  assert.equal(depth.values[0]?.value, 2);
  const adds = await metrics.queueAdds.get();
  assert.equal(adds.values[0]?.value, 2, "a duplicate add is not counted");
  clock.advance(1500);
  await q.get();
  clock.advance(2000);
  const longest = await metrics.longestRunningProcessor.get();
  assert.equal(longest.values[0]?.value, 2);
  q.done("a");
  q.addRateLimited("a");
  const retries = await metrics.queueRetries.get();
  assert.equal(retries.values[0]?.value, 1);
  const qd = await metrics.queueDuration.get();
  const sum = qd.values.find((v) => v.metricName === "workqueue_queue_duration_seconds_sum");
  assert.equal(sum?.value, 1.5);
  const wd = await metrics.workDuration.get();
  const wsum = wd.values.find((v) => v.metricName === "workqueue_work_duration_seconds_sum");
  assert.equal(wsum?.value, 2);
});
