import { test } from "node:test";
import assert from "node:assert/strict";
import { NdjsonDecoder, NdjsonError, readNdjson } from "../../src/kube/ndjson.ts";

const enc = new TextEncoder();

test("parses one value per line across arbitrary chunk boundaries", () => {
  const text = '{"type":"ADDED","n":1}\n{"type":"MODIFIED","n":2}\n\n{"type":"DELETED","n":3}\n';
  const bytes = enc.encode(text);
  for (let size = 1; size <= bytes.length; size++) {
    const d = new NdjsonDecoder();
    const out: unknown[] = [];
    for (let i = 0; i < bytes.length; i += size) out.push(...d.push(bytes.subarray(i, i + size)));
    out.push(...d.end());
    assert.deepEqual(
      out.map((v) => (v as { n: number }).n),
      [1, 2, 3],
      `chunk size ${size}`,
    );
  }
});

test("multi-byte UTF-8 split between chunks survives", () => {
  const bytes = enc.encode('{"msg":"délai 東京 ✓"}\n');
  const d = new NdjsonDecoder();
  const out = [
    ...d.push(bytes.subarray(0, 10)),
    ...d.push(bytes.subarray(10, 11)),
    ...d.push(bytes.subarray(11)),
  ];
  assert.deepEqual(out, [{ msg: "délai 東京 ✓" }]);
});

test("a last line without newline is flushed at the end; an incomplete one waits", () => {
  const d = new NdjsonDecoder();
  assert.deepEqual(d.push('{"a":1}\n{"b":'), [{ a: 1 }]);
  assert.deepEqual(d.push("2}"), []);
  assert.deepEqual(d.end(), [{ b: 2 }]);
});

test("malformed line is a named error without echoing the content", () => {
  const d = new NdjsonDecoder();
  assert.throws(
    () => d.push('{"token":"s3cret"\n'),
    (err: unknown) =>
      err instanceof NdjsonError && err.code === "ERR_KUBE_NDJSON" && !err.message.includes("s3cret"),
  );
});

test("readNdjson consumes an async stream", async () => {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    await Promise.resolve();
    yield enc.encode('{"x":');
    yield enc.encode('1}\n{"x":2}');
  }
  const out: unknown[] = [];
  for await (const v of readNdjson(chunks())) out.push(v);
  assert.deepEqual(out, [{ x: 1 }, { x: 2 }]);
});
