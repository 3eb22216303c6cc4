import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AlreadyExistsError,
  ConflictError,
  GoneError,
  InvalidError,
  NotFoundError,
  ServerError,
  TooManyRequestsError,
  errorFromResponse,
} from "../../src/kube/errors.ts";

const status = (code: number, reason: string, extra: object = {}) => ({
  kind: "Status",
  apiVersion: "v1",
  status: "Failure",
  message: `server says ${reason}`,
  reason,
  code,
  ...extra,
});

test("maps Kubernetes Status answers to named errors with the server's message", () => {
  const cases: [number, string, new (...a: never[]) => Error, string][] = [
    [404, "NotFound", NotFoundError, "ERR_KUBE_NOT_FOUND"],
    [409, "Conflict", ConflictError, "ERR_KUBE_CONFLICT"],
    [409, "AlreadyExists", AlreadyExistsError, "ERR_KUBE_ALREADY_EXISTS"],
    [410, "Expired", GoneError, "ERR_KUBE_GONE"],
    [500, "InternalError", ServerError, "ERR_KUBE_SERVER"],
    [503, "ServiceUnavailable", ServerError, "ERR_KUBE_SERVER"],
  ];
  for (const [code, reason, cls, errCode] of cases) {
    const err = errorFromResponse(code, status(code, reason), undefined, "get x");
    assert.ok(err instanceof cls, `${code} ${reason}`);
    assert.equal(err.code, errCode);
    assert.equal(err.message, `server says ${reason}`);
    assert.equal(err.httpStatus, code);
  }
});

test("422 Invalid carries the field causes", () => {
  const err = errorFromResponse(
    422,
    status(422, "Invalid", { details: { causes: [{ field: "spec.plan", message: "Required value" }] } }),
    undefined,
    "create",
  );
  assert.ok(err instanceof InvalidError);
  assert.deepEqual(err.causes, [{ field: "spec.plan", message: "Required value" }]);
});

test("429 honours Retry-After, else the Status retryAfterSeconds", () => {
  const a = errorFromResponse(429, status(429, "TooManyRequests"), "3", "list");
  assert.ok(a instanceof TooManyRequestsError);
  assert.equal(a.retryAfterMs, 3000);
  const b = errorFromResponse(
    429,
    status(429, "TooManyRequests", { details: { retryAfterSeconds: 2 } }),
    undefined,
    "list",
  );
  assert.ok(b instanceof TooManyRequestsError);
  assert.equal(b.retryAfterMs, 2000);
});

test("a non-Status body still yields a useful message", () => {
  const err = errorFromResponse(502, undefined, undefined, "get cloudinstances ns/a");
  assert.equal(err.message, "get cloudinstances ns/a: HTTP 502");
});
