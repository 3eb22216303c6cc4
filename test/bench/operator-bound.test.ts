// `npm run bench -- --scenario=operator-bound`, small, on the in-memory API server
// (test/real/bench.test.ts runs the same on a real one).
import { test } from "node:test";
import { checkOperatorBound } from "./operator-bound-check.ts";

test("operator-bound bench: 3 writes and 2 provider calls per instance; the ideal saw every watch event", () => {
  checkOperatorBound("memory", 40);
});
