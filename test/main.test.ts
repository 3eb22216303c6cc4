import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LeaseResource } from "../src/kube/resources.ts";
import { NotFoundError } from "../src/kube/errors.ts";
import { eventually, startApi } from "./kube-client/harness.ts";

const NODE = process.execPath;
const MAIN = join(import.meta.dirname, "..", "src", "main.ts");

let api: Awaited<ReturnType<typeof startApi>>;
let kubeconfig: string;
before(async () => {
  api = await startApi();
  kubeconfig = join(mkdtempSync(join(tmpdir(), "cio-main-")), "kubeconfig");
  writeFileSync(kubeconfig, api.server.kubeconfigYaml());
});
const children: ReturnType<typeof spawn>[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await api.close();
});

function runMain(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(NODE, [MAIN, ...args], {
    env: { PATH: process.env["PATH"], ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exit, out: () => stdout, err: () => stderr };
}

test("--help lists the flags and exits 0", async () => {
  const p = runMain(["--help"]);
  assert.equal(await p.exit, 0);
  assert.match(p.out(), /--max-concurrent-reconciles/);
  assert.match(p.out(), /OPERATOR_LEADER_ELECT/);
});

test("an invalid flag value exits 2 with a clear message", async () => {
  const p = runMain(["--queue-qps=lots"]);
  assert.equal(await p.exit, 2);
  assert.match(p.err(), /--queue-qps/);
});

test("SIGTERM: the operator stops, releases its lease and exits 0", async () => {
  const p = runMain(
    [
      `--kubeconfig=${kubeconfig}`,
      "--leader-elect",
      "--leader-election-id=main-test",
      "--leader-election-lease-duration=3s",
      "--leader-election-renew-deadline=2s",
      "--leader-election-retry-period=500ms",
      "--metrics-bind-address=127.0.0.1:0",
      "--health-probe-bind-address=127.0.0.1:0",
      "--metrics-secure=false",
      "--log-level=warn",
    ],
    { POD_NAME: "main-pod" },
  );
  await eventually(
    async () => {
      try {
        const lease = await api.client.get(LeaseResource, "default", "main-test");
        return lease.spec?.holderIdentity === "main-pod";
      } catch (err) {
        if (err instanceof NotFoundError) return false;
        throw err;
      }
    },
    "main acquired the lease",
    20_000,
  );
  p.child.kill("SIGTERM");
  assert.equal(await p.exit, 0, p.err() + p.out());
  const lease = await api.client.get(LeaseResource, "default", "main-test");
  assert.ok(!lease.spec?.holderIdentity, "released on shutdown");
});
