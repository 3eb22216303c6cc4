// Every script a user or the README runs answers --help with its usage and exits 0 without
// doing its job: a generator that rewrote files, or a demo that started servers, when asked
// what it does would be a trap.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const SCRIPTS = [
  "src/main.ts",
  "demo/run.ts",
  "bench/run.ts",
  "bench/empty-reconciler.ts",
  "bench/fairness.ts",
  "bench/hostile.ts",
  "bench/neighbour.ts",
  "bench/secrets.ts",
  "scripts/gen-crds.ts",
  "scripts/gen-docs.ts",
  "scripts/render-manifests.ts",
  "scripts/size-check.ts",
  "test/real/run.ts",
];
/** What the generators write: untouched by --help. */
const WRITTEN = ["crds", "README.md", "deploy/manifests"];

for (const script of SCRIPTS)
  test(`${script} --help prints its usage and does nothing else`, () => {
    const before = WRITTEN.map((f) => statSync(join(root, f)).mtimeMs);
    const out = execFileSync(process.execPath, [join(root, script), "--help"], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.match(out, /usage|\[options\]|--/i, out);
    assert.deepEqual(
      WRITTEN.map((f) => statSync(join(root, f)).mtimeMs),
      before,
      "nothing written",
    );
  });
