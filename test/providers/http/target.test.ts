// Provider request targets joined as strings must be exactly what the URL parser makes of them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { requestTarget, requestUrl } from "../../../src/providers/http/target.ts";

const BASES = [
  "https://api.example.com",
  "https://api.example.com/",
  "https://api.example.com/v1",
  "https://api.example.com/v1/",
  "http://127.0.0.1:8080/api/v2",
  "https://api.example.com:443/x/y/",
  "https://api.example.com/v1?key=1",
  "https://api.example.com/v1#frag",
];
const PATHS = [
  "",
  "/",
  "servers",
  "/servers",
  "/servers/42",
  "/servers/42/",
  "//servers",
  "/a//b",
  "/servers/a b",
  "/servers/ä",
  "/servers/%2F",
  "/servers/../x",
  "/./x",
  "/servers/%2e%2e/x",
  "/a:b",
  "a:b/c",
  "/x?y=1",
  "/x#y",
  "/x\\\\y",
  "/it's~ok!$&()*+,;=@",
  "/servers/{id}",
  "/servers/`q`",
];
const QUERIES: (Record<string, string | number | boolean | undefined> | undefined)[] = [
  undefined,
  {},
  { a: undefined },
  { page: 2, per_page: 100 },
  { q: "a b&c=d/é", flag: true, none: undefined, z: "" },
];

test("requestTarget equals the URL parser's origin and path for every base, path and query", () => {
  let cases = 0;
  for (const b of BASES)
    for (const p of PATHS)
      for (const q of QUERIES) {
        const base = new URL(b);
        const url = requestUrl(base, p, q);
        assert.deepEqual(
          requestTarget(base, p, q),
          { origin: url.origin, path: url.pathname + url.search },
          `${b} + ${p} + ${JSON.stringify(q)}`,
        );
        cases++;
      }
  assert.equal(cases, BASES.length * PATHS.length * QUERIES.length);
});
