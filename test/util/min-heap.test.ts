import { test } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "./seeded-random.ts";
import { MinHeap } from "../../src/util/min-heap.ts";

test("pops values lowest priority first, and undefined when empty", () => {
  const h = new MinHeap<string>();
  assert.equal(h.pop(), undefined);
  h.push(3, "c");
  h.push(1, "a");
  h.push(2, "b");
  assert.equal(h.size, 3);
  assert.deepEqual([h.peekPriority(), h.peekValue(), h.size], [1, "a", 3], "peeking takes nothing");
  assert.deepEqual([h.pop(), h.pop(), h.pop(), h.pop()], ["a", "b", "c", undefined]);
  assert.equal(h.size, 0);
  assert.deepEqual([h.peekPriority(), h.peekValue()], [undefined, undefined]);
  h.push(5, "e");
  h.clear();
  assert.equal(h.pop(), undefined);
});

test("agrees with a sorted list over 20,000 random pushes and pops", () => {
  const h = new MinHeap<number>();
  const model: number[] = [];
  const random = seededRandom(11);
  for (let i = 0; i < 20_000; i++) {
    if (random() < 0.55) {
      const p = Math.floor(random() * 1000);
      h.push(p, p);
      model.push(p);
      model.sort((a, b) => a - b);
    } else assert.equal(h.pop(), model.shift());
    assert.equal(h.size, model.length);
  }
  while (model.length > 0) assert.equal(h.pop(), model.shift());
});
