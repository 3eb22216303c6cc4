import { test } from "node:test";
import assert from "node:assert/strict";
import { TtlCache } from "../../src/providers/ttl-cache.ts";

test("loads once per TTL, shares a load in flight, never caches a failure", async () => {
  let now = 0;
  let loads = 0;
  const cache = new TtlCache<number>(() => now);
  const load = async (): Promise<number> => {
    await Promise.resolve();
    return ++loads;
  };
  assert.deepEqual(await Promise.all([cache.get(100, load), cache.get(100, load)]), [1, 1]);
  now = 99;
  assert.equal(await cache.get(100, load), 1);
  now = 100;
  assert.equal(await cache.get(100, load), 2);
  cache.clear();
  await assert.rejects(() => cache.get(100, () => Promise.reject(new Error("down"))), /down/);
  assert.equal(await cache.get(100, load), 3, "the failure was not kept");
});
