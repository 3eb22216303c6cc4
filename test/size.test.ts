import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { FILE_LIMIT, FUNCTION_LIMIT, offenders } from "../scripts/size-check.ts";

/**
 * Known offenders against issue #23's limits, each to be split; the list may only shrink (an
 * entry that no longer offends fails too, so it is removed when fixed). manager.ts grew
 * with sharding; the rest are left for lack of time.
 */
const ALLOWED = new Set(["src/kube/client.ts"]);

test(`no source file over ${String(FILE_LIMIT)} lines, no function over ${String(FUNCTION_LIMIT)} (beyond the known offenders)`, () => {
  const found = offenders(join(import.meta.dirname, ".."));
  const fresh = found
    .filter((o) => !ALLOWED.has(o.where))
    .map((o) => `${o.where} (${String(o.lines)} lines)`);
  assert.deepEqual(fresh, [], `over the limits: split them\n${fresh.join("\n")}`);
  const fixed = [...ALLOWED].filter((a) => !found.some((o) => o.where === a));
  assert.deepEqual(fixed, [], `no longer over the limits: remove from ALLOWED\n${fixed.join("\n")}`);
});
