import { test } from "node:test";
import assert from "node:assert/strict";
import { statusEqual } from "../../src/controller/status-equal.ts";
import { decodeSecret } from "../../src/controller/secrets.ts";
import { setCondition } from "../../src/controller/conditions.ts";

test("statusEqual ignores undefined fields, as a JSON round trip does", () => {
  assert.ok(statusEqual({ a: 1, b: undefined }, { a: 1 }));
  assert.ok(statusEqual(undefined, {}));
  assert.ok(!statusEqual({ a: [1, 2] }, { a: [2, 1] }));
  assert.ok(!statusEqual({ a: 1 }, { a: 1, c: "x" }));
});

test("statusEqual answers as the JSON round trip does on plain data and on what is not", () => {
  const roundTrip = (a: unknown, b: unknown): boolean =>
    JSON.stringify(JSON.parse(JSON.stringify(a ?? {}))) ===
    JSON.stringify(JSON.parse(JSON.stringify(b ?? {})));
  const values: unknown[] = [
    {},
    { a: 1 },
    { a: 1.5 },
    { a: "1" },
    { a: true },
    { a: null },
    { a: undefined },
    { a: [] },
    { a: [undefined] },
    { a: [null] },
    { a: [1, { b: undefined }] },
    { a: [1, {}] },
    { a: { b: { c: "x" } } },
    { a: { b: { c: "y" } } },
    { a: NaN },
    { a: null, b: Infinity },
    { a: new Date(0) },
    { a: "1970-01-01T00:00:00.000Z" },
    { a: -0 },
    { a: 0 },
    { a: Object.assign(Object.create(null) as object, { b: 1 }) },
    { a: { b: 1 } },
    { a: () => 1 },
    [1],
    { 0: 1 },
  ];
  for (const x of values)
    for (const y of values)
      assert.equal(statusEqual(x, y), roundTrip(x, y), `${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
});

test("decodeSecret decodes data and lets stringData win", () => {
  const s = decodeSecret({
    metadata: {},
    data: { token: Buffer.from("t0k").toString("base64"), a: Buffer.from("x").toString("base64") },
    stringData: { a: "y" },
  });
  assert.deepEqual(s, { token: "t0k", a: "y" });
});

test("setCondition keeps lastTransitionTime while the status holds and moves it on a flip", () => {
  const one = setCondition(undefined, { type: "Ready", status: "False", reason: "A", message: "" }, "t1", 1);
  const two = setCondition(one, { type: "Ready", status: "False", reason: "B", message: "m" }, "t2", 2);
  assert.equal(two[0]?.lastTransitionTime, "t1");
  assert.equal(two[0]?.reason, "B");
  const three = setCondition(two, { type: "Ready", status: "True", reason: "C", message: "" }, "t3", 2);
  assert.equal(three[0]?.lastTransitionTime, "t3");
  assert.equal(three.length, 1);
});
