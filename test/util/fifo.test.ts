import { test } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "./seeded-random.ts";
import { Fifo } from "../../src/util/fifo.ts";

test("hands items out in the order they came, and undefined when empty", () => {
  const q = new Fifo<string>();
  assert.equal(q.shift(), undefined);
  q.push("a");
  q.push("b");
  assert.equal(q.length, 2);
  assert.equal(q.shift(), "a");
  q.push("c");
  assert.deepEqual([q.shift(), q.shift(), q.shift()], ["b", "c", undefined]);
  assert.equal(q.length, 0);
});

test("agrees with an array used as a queue over 200,000 random pushes and takes, across compactions", () => {
  const q = new Fifo<number>();
  const model: number[] = [];
  const random = seededRandom(7);
  for (let i = 0; i < 200_000; i++) {
    // Phases that grow to thousands and drain, so the front is compacted many times.
    const pushing = Math.floor(i / 5_000) % 2 === 0 ? random() < 0.7 : random() < 0.3;
    if (pushing) {
      q.push(i);
      model.push(i);
    } else assert.equal(q.shift(), model.shift());
    assert.equal(q.length, model.length);
  }
  while (model.length > 0) assert.equal(q.shift(), model.shift());
  assert.equal(q.shift(), undefined);
});
