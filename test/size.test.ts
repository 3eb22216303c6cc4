import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { FILE_LIMIT, FUNCTION_LIMIT, offenders } from "../scripts/size-check.ts";

// Issue #23's limits hold for all of src/ with no exceptions: a file or function that grows
// past them is split along its seams (as manager.ts, the kube client, the metrics and the
// template reconciler were), not added to an allowance.
test(`no source file over ${String(FILE_LIMIT)} lines, no function over ${String(FUNCTION_LIMIT)}`, () => {
  const found = offenders(join(import.meta.dirname, "..")).map(
    (o) => `${o.where} (${String(o.lines)} lines)`,
  );
  assert.deepEqual(found, [], `over the limits: split them\n${found.join("\n")}`);
});
