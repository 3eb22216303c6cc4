/**
 * capabilitiesOf remembers each driver's methods (they are fixed once it is made) but asks the
 * account's `unavailable` every time: what an account lacks can change between two reconciles.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { capabilitiesOf, type Capability, type Driver } from "../../src/providers/driver.ts";

function driver(lacking: () => ReadonlySet<Capability>): Driver<unknown> {
  return {
    provider: "m2s",
    validate: () => Promise.resolve(),
    create: () => Promise.resolve({ id: "x" }),
    get: () => Promise.resolve(undefined),
    delete: () => Promise.resolve(),
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    setTags: () => Promise.resolve(),
    unavailable: lacking,
  } as unknown as Driver<unknown>;
}

test("what an account lacks is asked each time; the driver's methods are not lost by it", () => {
  let lacking: ReadonlySet<Capability> = new Set();
  const d = driver(() => lacking);
  const all = new Set(capabilitiesOf(d));
  assert.ok(all.has("start") && all.has("stop") && all.has("tags"), [...all].join());
  assert.ok(!all.has("resize"), "no resize method, no resize");

  lacking = new Set<Capability>(["tags"]);
  assert.ok(!capabilitiesOf(d).has("tags"), "the account lost its tags API");
  assert.ok(capabilitiesOf(d).has("start"));

  lacking = new Set();
  assert.deepEqual(new Set(capabilitiesOf(d)), all, "the tags API is back, and nothing else went missing");
});

test("drivers do not share what they can do", () => {
  const full = driver(() => new Set());
  const bare = {
    provider: "m2s",
    validate: () => Promise.resolve(),
    create: () => Promise.resolve({ id: "x" }),
    get: () => Promise.resolve(undefined),
    delete: () => Promise.resolve(),
  } as unknown as Driver<unknown>;
  assert.ok(capabilitiesOf(full).has("start"));
  assert.ok(!capabilitiesOf(bare).has("start"));
  assert.ok(capabilitiesOf(full).has("start"));
});
