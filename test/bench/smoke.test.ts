// The short variant of `npm run bench`: the same code at N=30 for all three scenarios. It checks
// the run completes and reports what it must; speed targets are judged from full runs only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

test("npm run bench -- --smoke: every scenario converges and deletes, resync writes nothing", () => {
  const root = join(import.meta.dirname, "..", "..");
  const out = mkdtempSync(join(tmpdir(), "cio-bench-smoke-"));
  const run = spawnSync(process.execPath, [join(root, "bench/run.ts"), "--smoke", `--out=${out}`], {
    cwd: root,
    encoding: "utf8",
    timeout: 240_000,
  });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /\| scenario \| N \| to Ready \(s\) \| ideal \(s\) \| ratio \|/);
  const file = readdirSync(out).find((f) => f.endsWith("-smoke.json"));
  assert.ok(file, "a results file");
  const report = JSON.parse(readFileSync(join(out, file), "utf8")) as {
    runtime: Record<string, string>;
    results: {
      scenario: string;
      n: number;
      convergence: { readySeconds: number; ratio: number };
      deletion: { goneSeconds: number };
      economy: {
        providerCallsPerInstanceToReady: number;
        kubeObjectWritesPerInstanceToReady: number;
        resync: { kubeWrites: number; providerCallsPerInstance: number };
      };
      memory: { rssMB: number };
    }[];
  };
  assert.match(
    report.runtime.NODE_OPTIONS ?? "",
    /max-semi-space-size/,
    "measured with the image's settings",
  );
  assert.deepEqual(
    report.results.map((r) => r.scenario),
    ["ours", "controller-runtime-defaults", "fixed-5s-polling"],
  );
  for (const r of report.results) {
    assert.equal(r.n, 30);
    assert.ok(r.convergence.readySeconds > 0 && r.deletion.goneSeconds > 0);
    assert.equal(
      r.economy.resync.kubeWrites,
      0,
      `${r.scenario}: a resync of unchanged objects writes nothing`,
    );
    assert.ok(r.economy.resync.providerCallsPerInstance > 0, "the resync did read the VMs");
    assert.ok(r.economy.providerCallsPerInstanceToReady <= 4, `${r.scenario}: provider calls per instance`);
    assert.ok(r.economy.kubeObjectWritesPerInstanceToReady <= 4, `${r.scenario}: API writes per instance`);
    assert.ok(r.memory.rssMB > 0);
  }
});

test("npm run bench -- --scenario=scale (small): cache sync, a start-up and a resync pass that write nothing", () => {
  const root = join(import.meta.dirname, "..", "..");
  const out = mkdtempSync(join(tmpdir(), "cio-bench-scale-smoke-"));
  const run = spawnSync(
    process.execPath,
    [
      join(root, "bench/run.ts"),
      "--scenario=scale",
      "--n=300",
      "--accounts=3",
      "--resync-period=8",
      "--probes=20",
      `--out=${out}`,
    ],
    { cwd: root, encoding: "utf8", timeout: 180_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  const file = readdirSync(out).find((f) => f.endsWith("-scale-300.json"));
  assert.ok(file, "a results file");
  const { result } = JSON.parse(readFileSync(join(out, file), "utf8")) as {
    result: {
      cacheSync: { seconds: number };
      startupPass: { kubeWrites: number; providerCallsPerObject: number };
      resyncPass?: { kubeWrites: number; reconciles: number; providerCallsPerObject: number };
      memory: { peakRssMB: number };
      latency: { idle: { p99ms: number } };
    };
  };
  assert.ok(result.cacheSync.seconds > 0);
  assert.equal(
    result.startupPass.kubeWrites,
    0,
    "the clones are converged: the start-up pass writes nothing",
  );
  assert.ok(result.startupPass.providerCallsPerObject >= 0.9, "the start-up pass read (nearly) every VM");
  assert.ok(result.resyncPass, "a resync pass");
  assert.equal(result.resyncPass.kubeWrites, 0);
  assert.ok(result.resyncPass.reconciles >= 300);
  assert.ok(result.memory.peakRssMB > 0);
});
