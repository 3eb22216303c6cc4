import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BackoffManager,
  REFLECTOR_BACKOFF,
  clockSleep,
} from "../../../src/controller/runtime/backoff-manager.ts";
import { ManualClock } from "./manual-clock.ts";

test("doubles from 800 ms to a 30 s cap", () => {
  const clock = new ManualClock();
  const b = new BackoffManager(REFLECTOR_BACKOFF, clock, () => 1);
  const delays = Array.from({ length: 8 }, () => {
    clock.advance(10);
    return b.next();
  });
  assert.deepEqual(delays, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
});

test("jitter draws each delay from [nominal/2, nominal], never above the cap", () => {
  const clock = new ManualClock();
  const low = new BackoffManager(REFLECTOR_BACKOFF, clock, () => 0);
  const high = new BackoffManager(REFLECTOR_BACKOFF, clock, () => 0.999);
  assert.equal(low.next(), 400);
  assert.equal(high.next(), 800);
  for (let i = 0; i < 10; i++) assert.ok(high.next() <= 30_000);
});

test("resets after 2 minutes without failures", () => {
  const clock = new ManualClock();
  const b = new BackoffManager(REFLECTOR_BACKOFF, clock, () => 1);
  b.next();
  b.next();
  b.next();
  assert.equal(b.nominalMs, 3200);
  clock.advance(119_000);
  assert.equal(b.next(), 6400, "still within the window");
  clock.advance(120_001);
  assert.equal(b.next(), 800);
});

test("clockSleep resolves on the clock or on abort", async () => {
  const clock = new ManualClock();
  let done = false;
  const p = clockSleep(clock, 500).then(() => (done = true));
  clock.advance(499);
  await Promise.resolve();
  assert.equal(done, false);
  clock.advance(1);
  await p;
  assert.equal(done, true);
  const ac = new AbortController();
  const q = clockSleep(clock, 10_000, ac.signal);
  ac.abort();
  await q;
  assert.equal(clock.pending, 0, "the timer was cleared");
});
