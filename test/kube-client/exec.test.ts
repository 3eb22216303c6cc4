// Exec credential plugins over real TLS on loopback: a token, a client certificate, a command
// relative to the kubeconfig's folder, one run for many concurrent requests, early refresh.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient } from "../../src/kube/client.ts";
import { connect, KubeConfigError, loadKubeConfig } from "../../src/kube/connection.ts";
import { SecretResource } from "../../src/kube/resources.ts";
import { b64, kubeconfig, startLoopbackApi, testPki, type LoopbackApi } from "./loopback.ts";

let api: LoopbackApi;
let mtls: LoopbackApi;
before(async () => {
  api = await startLoopbackApi();
  mtls = await startLoopbackApi({ requireClientCert: true });
});
after(async () => {
  await api.close();
  await mtls.close();
});

/**
 * A kubeconfig folder holding `bin/plugin`, a shell script that counts its runs, records
 * KUBERNETES_EXEC_INFO, waits a little (so concurrent callers overlap) and prints `credential`.
 */
function setup(opts: { server: string; credential: object; provideClusterInfo?: boolean }): {
  kubeconfigPath: string;
  runs: () => number;
  execInfo: () => unknown;
} {
  const dir = mkdtempSync(join(tmpdir(), "cio-exec-"));
  mkdirSync(join(dir, "bin"));
  const counter = join(dir, "runs");
  const info = join(dir, "exec-info.json");
  writeFileSync(counter, "");
  const plugin = join(dir, "bin", "plugin");
  writeFileSync(
    plugin,
    [
      "#!/bin/sh",
      `echo run >> '${counter}'`,
      `printf '%s' "$KUBERNETES_EXEC_INFO" > '${info}'`,
      "sleep 0.2",
      `cat <<'JSON'`,
      JSON.stringify({
        apiVersion: "client.authentication.k8s.io/v1",
        kind: "ExecCredential",
        ...opts.credential,
      }),
      "JSON",
    ].join("\n"),
  );
  chmodSync(plugin, 0o755);
  const user = `{exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/plugin, provideClusterInfo: ${String(opts.provideClusterInfo ?? false)}, env: [{name: FLAVOUR, value: mint}]}}`;
  const kubeconfigPath = join(dir, "kubeconfig");
  writeFileSync(kubeconfigPath, kubeconfig({ server: opts.server, user }));
  return {
    kubeconfigPath,
    runs: () =>
      readFileSync(counter, "utf8")
        .split("\n")
        .filter((l) => l !== "").length,
    execInfo: () => JSON.parse(readFileSync(info, "utf8")) as unknown,
  };
}

const inAnHour = (): string => new Date(Date.now() + 3600e3).toISOString();

async function client(path: string): Promise<KubeClient> {
  return new KubeClient({
    connection: await connect(loadKubeConfig({ kubeconfig: path })),
    retry: { retries: 0 },
  });
}

test("a plugin's token, its command relative to the kubeconfig's folder, and KUBERNETES_EXEC_INFO with the cluster", async () => {
  const s = setup({
    server: api.url,
    credential: { status: { token: "exec-token", expirationTimestamp: inAnHour() } },
    provideClusterInfo: true,
  });
  assert.notEqual(
    process.cwd(),
    join(s.kubeconfigPath, ".."),
    "the command cannot resolve against the working directory",
  );
  const c = await client(s.kubeconfigPath);
  try {
    await c.get(SecretResource, "default", "a");
    assert.equal(api.seen.at(-1)?.headers.authorization, "Bearer exec-token");
    assert.deepEqual(s.execInfo(), {
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      spec: {
        interactive: false,
        cluster: { server: api.url, "certificate-authority-data": b64(testPki().ca) },
      },
    });
  } finally {
    await c.close();
  }
});

test("ten concurrent requests run the plugin once", async () => {
  const s = setup({
    server: api.url,
    credential: { status: { token: "shared", expirationTimestamp: inAnHour() } },
  });
  const conn = await connect(loadKubeConfig({ kubeconfig: s.kubeconfigPath }));
  const c = new KubeClient({ connection: conn, retry: { retries: 0 } });
  try {
    assert.equal(s.runs(), 1, "connect derived the credential once");
    // Nothing cached: the ten start cold, as at a start-up where informers, lease and events race.
    conn.invalidate();
    const before = api.seen.length;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => c.get(SecretResource, "default", `p${String(i)}`)),
    );
    assert.equal(s.runs(), 2, "one more run for all ten");
    assert.ok(api.seen.slice(before).every((r) => r.headers.authorization === "Bearer shared"));
  } finally {
    await c.close();
  }
});

test("a plugin that returns a client certificate (no token) authenticates over mutual TLS", async () => {
  const { clientCert, clientKey } = testPki();
  const s = setup({
    server: mtls.url,
    credential: {
      status: {
        clientCertificateData: clientCert,
        clientKeyData: clientKey,
        expirationTimestamp: inAnHour(),
      },
    },
  });
  const c = await client(s.kubeconfigPath);
  try {
    const got = await c.get(SecretResource, "default", "cert");
    assert.equal(got.metadata.name, "cert");
    assert.equal(mtls.seen.at(-1)?.clientCN, "exec-user");
    assert.equal(mtls.seen.at(-1)?.headers.authorization, undefined);
  } finally {
    await c.close();
  }
});

test("a credential close to expiry is refreshed early (30 s before), not at the last moment", async () => {
  const s = setup({
    server: api.url,
    credential: {
      status: { token: "short", expirationTimestamp: new Date(Date.now() + 31_000).toISOString() },
    },
  });
  const c = await client(s.kubeconfigPath);
  try {
    await c.get(SecretResource, "default", "a");
    await new Promise((r) => setTimeout(r, 1_100));
    await c.get(SecretResource, "default", "b");
    assert.equal(s.runs(), 2);
  } finally {
    await c.close();
  }
});

test("a failing plugin is a KubeConfigError carrying its stderr, at connect", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cio-exec-fail-"));
  const path = join(dir, "kubeconfig");
  writeFileSync(
    path,
    kubeconfig({
      server: api.url,
      user: `{exec: {command: ${process.execPath}, args: ["-e", "process.stderr.write('login required'); process.exit(1)"], installHint: "install the cloud CLI"}}`,
    }),
  );
  await assert.rejects(
    () => connect(loadKubeConfig({ kubeconfig: path })),
    (e: unknown) =>
      e instanceof KubeConfigError &&
      /login required/.test(e.message) &&
      /install the cloud CLI/.test(e.message),
  );
});
