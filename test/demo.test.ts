import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { PROVIDER_NAMES } from "../src/api/index.ts";

test("npm run demo converges every example, exercises stop/resize/scale/delete and leaves no VM", () => {
  const root = join(import.meta.dirname, "..");
  const run = spawnSync(process.execPath, [join(root, "demo/run.ts")], {
    cwd: root,
    encoding: "utf8",
    timeout: 150_000,
  });
  const out = run.stdout;
  assert.equal(run.status, 0, `demo failed:\n${out}\n${run.stderr}`);
  assert.match(out, /-- stop /);
  assert.match(out, /-- resize /);
  for (const provider of PROVIDER_NAMES) {
    assert.match(out, new RegExp(`-- scale ${provider}-pool to 1`));
    assert.match(
      out,
      new RegExp(
        `${provider} +time to Ready median [\\d.]+s, max [\\d.]+s \\(4 instances\\); provider calls \\d+; VMs left 0`,
      ),
    );
  }
  assert.match(out, /all Ready, 0 VMs left/);
  assert.match(out, /operator exited with 0/);
  // Non-TTY output is plain lines, never terminal redraw sequences.
  assert.ok(!out.includes("\x1b["));
});
