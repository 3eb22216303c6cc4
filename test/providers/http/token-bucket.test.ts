import { test } from "node:test";
import assert from "node:assert/strict";
import { RequestLimiter } from "../../../src/providers/http/token-bucket.ts";
import { ManualClock } from "../../controller/runtime/manual-clock.ts";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test("a burst passes at once, then requests start at the refill rate", async () => {
  const clock = new ManualClock();
  const limiter = new RequestLimiter({ qps: 10, burst: 2, maxConcurrent: 100, clock });
  const started: number[] = [];
  for (let i = 0; i < 4; i++)
    void limiter.acquire().then((release) => {
      started.push(i);
      release();
    });
  await tick();
  assert.deepEqual(started, [0, 1], "the burst");
  clock.advance(99);
  await tick();
  assert.deepEqual(started, [0, 1], "a token takes 100 ms at 10 qps");
  clock.advance(1);
  await tick();
  assert.deepEqual(started, [0, 1, 2]);
  clock.advance(100);
  await tick();
  assert.deepEqual(started, [0, 1, 2, 3], "first come, first served");
});

test("the concurrency cap holds until a request ends; release is idempotent", async () => {
  const clock = new ManualClock();
  const limiter = new RequestLimiter({ qps: 1000, burst: 1000, maxConcurrent: 1, clock });
  const first = await limiter.acquire();
  let second = false;
  void limiter.acquire().then(() => (second = true));
  await tick();
  assert.equal(second, false);
  first();
  first();
  await tick();
  assert.equal(second, true);
  let third = false;
  void limiter.acquire().then(() => (third = true));
  await tick();
  assert.equal(third, false, "a double release did not free a second slot");
});

test("a waiter whose signal aborts leaves the queue at once and takes no token", async () => {
  const clock = new ManualClock();
  const limiter = new RequestLimiter({ qps: 10, burst: 1, maxConcurrent: 100, clock });
  (await limiter.acquire())();
  const ac = new AbortController();
  const aborted = limiter.acquire(ac.signal);
  const started: string[] = [];
  void limiter.acquire().then(() => started.push("next"));
  assert.equal(limiter.waiting, 2);
  ac.abort(new Error("cancelled"));
  await assert.rejects(aborted, /cancelled/);
  assert.equal(limiter.waiting, 1);
  clock.advance(100);
  await tick();
  assert.deepEqual(started, ["next"], "the one token went to the waiter behind it");
  await assert.rejects(limiter.acquire(AbortSignal.abort()), "an aborted signal never queues");
  assert.equal(limiter.waiting, 0);
});
