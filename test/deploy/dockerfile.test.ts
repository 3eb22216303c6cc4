import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildDist, dockerfileStages, imageRuntime, type Stage } from "./image.ts";

const root = join(import.meta.dirname, "../..");
const node = join(root, "node_modules", ".bin", "node");

const dockerfile = dockerfileStages();
const final = dockerfile.at(-1)!;
const image = imageRuntime(dockerfile);
const entrypoint = image.entrypoint;
const run = (stage: Stage): string[] => stage.body.filter((i) => i.op === "RUN").map((i) => i.args);

test("the Dockerfile is multi-stage on Node 24 slim, with no HEALTHCHECK", () => {
  assert.ok(dockerfile.length >= 2);
  const text = readFileSync(join(root, "Dockerfile"), "utf8");
  assert.match(text, /^ARG NODE_IMAGE=node:24-slim$/m);
  for (const s of dockerfile) assert.equal(s.from, "${NODE_IMAGE}");
  assert.ok(!/^\s*HEALTHCHECK/im.test(text), "Kubernetes probes replace HEALTHCHECK");
});

test("the final stage installs production dependencies only and copies just the build output", () => {
  const installs = dockerfile.flatMap(run).filter((r) => r.includes("npm ci"));
  const prodInstall = installs.find((r) => r.includes("--omit=dev"));
  assert.ok(prodInstall, "npm ci --omit=dev");
  const copies = final.body.filter((i) => i.op === "COPY").map((i) => i.args);
  assert.ok(copies.includes("--from=build /app/dist ./dist"), copies.join(" | "));
  assert.ok(copies.some((c) => /^--from=\w+ \/app\/node_modules \.\/node_modules$/.test(c)));
  // The stage that built node_modules for the final image ran `npm ci --omit=dev`.
  const depsStageName = /^--from=(\w+) \/app\/node_modules/.exec(copies.find((c) => c.includes("node_modules"))!)![1];
  const depsStage = dockerfile.find((s) => s.name === depsStageName)!;
  assert.ok(run(depsStage).some((r) => r.includes("npm ci --omit=dev")));
  for (const c of copies.filter((x) => !x.startsWith("--from=")))
    assert.match(c, /^package\.json /, `only package.json (for "type": "module") comes from the context: ${c}`);
  assert.equal(run(final).length, 0, "nothing runs in the final stage (no shell needed)");
});

test("the image runs as a numeric non-root user with node as PID 1 in exec form", () => {
  const user = final.body.filter((i) => i.op === "USER").at(-1)?.args;
  assert.match(user ?? "", /^[1-9]\d*(:[1-9]\d*)?$/, "numeric, non-zero USER");
  assert.ok(entrypoint, "an exec-form ENTRYPOINT");
  assert.equal(entrypoint[0], "node");
  assert.equal(entrypoint.at(-1), "dist/main.js");
  for (const flag of entrypoint.slice(1, -1)) assert.match(flag, /^--[a-z-]+(=\S+)?$/, "only node's own flags between");
  assert.ok(!final.body.some((i) => i.op === "CMD" && !i.args.startsWith("[")), "no shell-form CMD");
  const chartValues = readFileSync(join(root, "deploy/helm/cloud-instance-operator/values.yaml"), "utf8");
  assert.match(chartValues, new RegExp(`runAsUser: ${user!.split(":")[0]}\\b`), "the chart runs the same uid");
});

test("`npm ci --omit=dev` leaves out the `node` devDependency and everything only dev tools need", () => {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  assert.equal(lock.packages["node_modules/node"]?.dev, true, "node is dev-only in the lockfile");
  assert.equal(lock.packages["node_modules/typescript"]?.dev, true);
  for (const name of Object.keys(pkg.dependencies))
    assert.notEqual(lock.packages[`node_modules/${name}`]?.dev, true, `${name} is installed in production`);
  // Production packages need no install script: the final stage runs npm ci --ignore-scripts.
  const scripted = Object.entries<Record<string, unknown>>(lock.packages)
    .filter(([path, p]) => path !== "" && p.dev !== true && p.hasInstallScript === true)
    .map(([path]) => path);
  assert.deepEqual(scripted, []);
});

test(".dockerignore lets in exactly what the Dockerfile copies from the context", () => {
  const lines = readFileSync(join(root, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  assert.equal(lines[0], "*", "an allow-list: everything else stays out");
  const allowed = new Set(lines.slice(1).map((l) => l.replace(/^!/, "").replace(/\/$/, "")));
  const sources = dockerfile
    .flatMap((s) => s.body)
    .filter((i) => i.op === "COPY" && !i.args.startsWith("--from="))
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  for (const src of sources) {
    assert.ok(allowed.has(src.replace(/\/$/, "")), `${src} is copied but ignored`);
    assert.ok(existsSync(join(root, src)), `${src} exists`);
  }
  for (const a of allowed) assert.ok(sources.includes(a), `${a} is let in but never copied`);
});

test(
  "the build stage's tsc emits dist/main.js, and the entry point starts and prints --help",
  { skip: existsSync(join(root, "src/main.ts")) ? false : "src/main.ts does not exist yet" },
  () => {
    const built = buildDist("docker-build-");
    const out = built.dir;
    try {
      assert.ok(existsSync(join(out, "main.js")), "dist/main.js, the ENTRYPOINT, is emitted");
      // With the image's node flags: a flag node refuses would stop the container at start.
      const help = execFileSync(node, [...image.nodeArgs, join(out, "main.js"), "--help"], {
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "", ...image.env },
        timeout: 60_000,
      });
      for (const flag of [
        "--kubeconfig",
        "--namespaces",
        "--max-concurrent-reconciles",
        "--provider-max-inflight-per-account",
        "--resync-period",
        "--leader-elect",
        "--leader-election-id",
        "--leader-election-namespace",
        "--metrics-bind-address",
        "--health-probe-bind-address",
        "--log-level",
        "--label-selector",
        "--queue-qps",
        "--queue-burst",
      ])
        assert.ok(help.includes(flag), `--help lists ${flag} (the chart passes it)`);
    } finally {
      built.remove();
    }
  },
);
