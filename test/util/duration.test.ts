import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDuration, DurationError } from "../../src/util/duration.ts";
import { backoffDelay, parseRetryAfter } from "../../src/util/backoff.ts";

test("parseDuration reads Go-style durations", () => {
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("5m"), 300_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("0"), 0);
  for (const bad of ["", "5", "5x", "m5", "-1s", "1h 2m"])
    assert.throws(() => parseDuration(bad), DurationError, bad);
});

test("backoffDelay doubles per attempt within [exp/2, exp], capped", () => {
  assert.equal(
    backoffDelay(0, 100, 10_000, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(0, 100, 10_000, () => 1),
    100,
  );
  assert.equal(
    backoffDelay(3, 100, 10_000, () => 1),
    800,
  );
  assert.equal(
    backoffDelay(30, 100, 10_000, () => 1),
    10_000,
  );
});

test("parseRetryAfter takes seconds or an HTTP date", () => {
  assert.equal(parseRetryAfter("2"), 2000);
  assert.equal(parseRetryAfter(undefined), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
});
