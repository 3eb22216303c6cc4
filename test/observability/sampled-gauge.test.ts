// Gauges of the reconcile path are read from their sources when scraped, not set on every change.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { sampledGauge } from "../../src/observability/metrics/sampled-gauge.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { WorkQueue } from "../../src/controller/runtime/workqueue.ts";
import { ManualClock } from "../controller/runtime/manual-clock.ts";
import { defaultControllerRateLimiter } from "../../src/controller/runtime/rate-limiter.ts";

test("a sampled gauge reports each source's value at scrape time; a later source for the same labels replaces it", async () => {
  const registry = new Registry();
  const g = sampledGauge({ name: "g", help: "h", labelNames: ["name"], registers: [registry] });
  let a = 1;
  g.sample({ name: "a" }, () => a);
  g.sample({ name: "b" }, () => 7);
  a = 5;
  assert.match(await registry.metrics(), /g\{name="a"\} 5\n/);
  assert.match(await registry.metrics(), /g\{name="b"\} 7\n/);
  g.sample({ name: "b" }, () => 9);
  assert.match(await registry.metrics(), /g\{name="b"\} 9\n/);
});

test("the work queue's depth and longest running processor are exact at scrape time", async () => {
  const clock = new ManualClock();
  const metrics = new Metrics();
  const q = new WorkQueue({ name: "q", clock, rateLimiter: defaultControllerRateLimiter(clock), metrics });
  q.add("a");
  q.add("b");
  assert.equal((await metrics.queueDepth.get()).values[0]?.value, 2);
  await q.get();
  clock.advance(3000);
  assert.equal((await metrics.queueDepth.get()).values[0]?.value, 1);
  // No queue event since the take: the value is read now, not when the key was taken.
  assert.equal((await metrics.longestRunningProcessor.get()).values[0]?.value, 3);
  q.done("a");
  assert.equal((await metrics.longestRunningProcessor.get()).values[0]?.value, 0);
});
