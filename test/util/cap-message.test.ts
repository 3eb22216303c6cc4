import { test } from "node:test";
import assert from "node:assert/strict";
import { capMessage, MAX_MESSAGE_BYTES } from "../../src/util/cap-message.ts";

test("capMessage leaves short messages alone and cuts long ones to 1 KiB, marked", () => {
  assert.equal(capMessage("short"), "short");
  const long = "x".repeat(20_000);
  const cut = capMessage(long);
  assert.ok(Buffer.byteLength(cut) <= MAX_MESSAGE_BYTES);
  assert.match(cut, /\[cut\]$/);
  const multibyte = "ж🙂".repeat(2000);
  const c2 = capMessage(multibyte);
  assert.ok(Buffer.byteLength(c2) <= MAX_MESSAGE_BYTES);
  assert.doesNotMatch(c2, /\uFFFD/);
  assert.ok(!/[\uD800-\uDBFF] … \[cut\]$/.test(c2), "no lone high surrogate before the mark");
});
