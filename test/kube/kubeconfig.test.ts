import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { request } from "undici";
import {
  Credentials,
  inClusterConfig,
  KubeConfigError,
  kubeConfigFromString,
  loadKubeConfig,
} from "../../src/kube/kubeconfig.ts";
import { connect } from "../../src/kube/connection.ts";

const dir = mkdtempSync(join(tmpdir(), "cio-kubeconfig-"));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const b64 = (s: string): string => Buffer.from(s).toString("base64");

describe("loading", () => {
  test("KUBECONFIG files merge like kubectl: the first to name an entry wins, current-context from the first that sets one", () => {
    const a = file(
      "a.yaml",
      `apiVersion: v1
clusters: [{name: dev, cluster: {server: "https://dev.example:6443"}}]
users: [{name: me, user: {token: first-token}}]
contexts: [{name: dev, context: {cluster: dev, user: me}}]
`,
    );
    const b = file(
      "b.yaml",
      `apiVersion: v1
current-context: dev
clusters: [{name: dev, cluster: {server: "https://ignored.example"}}, {name: prod, cluster: {server: "https://prod.example"}}]
users: [{name: me, user: {token: second-token}}]
contexts: [{name: prod, context: {cluster: prod, user: me}}]
`,
    );
    const kc = loadKubeConfig({ kubeconfig: [a, b].join(delimiter) });
    assert.equal(kc.server.href, "https://dev.example:6443/");
    assert.deepEqual(kc.auth, { kind: "token", token: "first-token" });
    assert.equal(
      loadKubeConfig({ kubeconfig: [a, b].join(delimiter), context: "prod" }).server.host,
      "prod.example",
    );
  });

  test("certificates come from *-data or from files relative to the kubeconfig", () => {
    file("ca.pem", "CA-PEM");
    file("client.pem", "CERT-PEM");
    const p = file(
      "certs.yaml",
      `current-context: c
clusters: [{name: c, cluster: {server: "https://c.example", certificate-authority: ca.pem, tls-server-name: api.internal}}]
users: [{name: u, user: {client-certificate: client.pem, client-key-data: ${b64("KEY-PEM")}}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
`,
    );
    const kc = loadKubeConfig({ kubeconfig: p });
    assert.equal(kc.ca, "CA-PEM");
    assert.equal(kc.cert, "CERT-PEM");
    assert.equal(kc.key, "KEY-PEM");
    assert.equal(kc.servername, "api.internal");
    assert.deepEqual(kc.auth, { kind: "none" });
  });

  test("clear errors: no current context, unknown context, legacy auth-provider, unreadable file", () => {
    assert.throws(
      () => kubeConfigFromString("clusters: []"),
      (e: unknown) => e instanceof KubeConfigError && /current-context/.test(e.message),
    );
    assert.throws(
      () => kubeConfigFromString("current-context: nope\ncontexts: []"),
      /context "nope" not found/,
    );
    assert.throws(
      () =>
        kubeConfigFromString(`current-context: c
clusters: [{name: c, cluster: {server: "https://c"}}]
users: [{name: u, user: {auth-provider: {name: gcp}}}]
contexts: [{name: c, context: {cluster: c, user: u}}]`),
      /legacy auth-provider "gcp".*exec credential plugin/,
    );
    assert.throws(() => loadKubeConfig({ kubeconfig: join(dir, "missing.yaml") }), /cannot read/);
  });

  test("no kubeconfig anywhere: the in-cluster service account", () => {
    const sa = mkdtempSync(join(tmpdir(), "cio-sa-"));
    writeFileSync(join(sa, "token"), "pod-token\n");
    writeFileSync(join(sa, "ca.crt"), "SA-CA");
    const kc = inClusterConfig({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, sa);
    assert.equal(kc?.server.href, "https://[fd00::1]/");
    assert.equal(kc?.ca, "SA-CA");
    assert.deepEqual(kc?.auth, { kind: "tokenFile", path: join(sa, "token") });
    assert.equal(inClusterConfig({}, sa), undefined, "outside a pod");
    assert.throws(() => loadKubeConfig({ env: { HOME: dir } }), /not running in a cluster/);
  });
});

describe("credentials", () => {
  test("a token file is re-read (rotation) after its cache minute", async () => {
    const path = file("token", "one\n");
    const creds = new Credentials({ kind: "tokenFile", path });
    assert.equal(await creds.authorization(0), "Bearer one");
    writeFileSync(path, "two\n");
    assert.equal(await creds.authorization(30_000), "Bearer one", "cached within the minute");
    assert.equal(await creds.authorization(61_000), "Bearer two");
  });

  test("an exec plugin's token is used until it expires; the plugin gets KUBERNETES_EXEC_INFO and env", async () => {
    const counter = file("exec-count", "0");
    const plugin = file(
      "plugin.mjs",
      `import { readFileSync, writeFileSync } from "node:fs";
const n = Number(readFileSync(${JSON.stringify(counter)}, "utf8")) + 1;
writeFileSync(${JSON.stringify(counter)}, String(n));
const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO);
process.stdout.write(JSON.stringify({ apiVersion: info.apiVersion, kind: "ExecCredential",
  status: { token: "exec-" + n + "-" + process.env.PLUGIN_FLAVOUR + "-" + info.spec.cluster.server,
            expirationTimestamp: new Date(Date.now() + 3600e3).toISOString() } }));`,
    );
    const creds = new Credentials({
      kind: "exec",
      exec: {
        command: process.execPath,
        args: [plugin],
        env: [{ name: "PLUGIN_FLAVOUR", value: "mint" }],
        provideClusterInfo: true,
      },
      server: "https://c.example",
      ca: undefined,
      skipTLSVerify: false,
    });
    assert.equal(await creds.authorization(), "Bearer exec-1-mint-https://c.example");
    assert.equal(await creds.authorization(), "Bearer exec-1-mint-https://c.example", "cached until expiry");
    creds.invalidate();
    assert.equal(await creds.authorization(), "Bearer exec-2-mint-https://c.example");
  });

  test("a failing exec plugin is a KubeConfigError with its stderr", async () => {
    const creds = new Credentials({
      kind: "exec",
      exec: {
        command: process.execPath,
        args: ["-e", "process.stderr.write('login required'); process.exit(1)"],
      },
      server: "https://c",
      ca: undefined,
      skipTLSVerify: false,
    });
    await assert.rejects(
      () => creds.authorization(),
      (e: unknown) => e instanceof KubeConfigError && /login required/.test(e.message),
    );
  });

  test("basic auth", async () => {
    assert.equal(
      await new Credentials({ kind: "basic", username: "u", password: "p" }).authorization(),
      `Basic ${b64("u:p")}`,
    );
  });
});

describe("connecting over TLS with the cluster's CA", () => {
  let server: Server;
  let port: number;
  let ca: string;
  before(async () => {
    const tls = mkdtempSync(join(tmpdir(), "cio-tls-"));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        join(tls, "key.pem"),
        "-out",
        join(tls, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    ca = execFileSync("cat", [join(tls, "cert.pem")]).toString();
    const key = execFileSync("cat", [join(tls, "key.pem")]).toString();
    server = createServer({ cert: ca, key }, (req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ auth: req.headers.authorization ?? null }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.close();
  });

  test("the CA verifies the server and the token goes in the Authorization header", async () => {
    const kc = kubeConfigFromString(`current-context: c
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${String(port)}", certificate-authority-data: ${b64(ca)}}}]
users: [{name: u, user: {token: t0k3n}}]
contexts: [{name: c, context: {cluster: c, user: u}}]`);
    const conn = await connect(kc);
    try {
      const res = await request(`${conn.server.origin}/version`, {
        dispatcher: conn.dispatcher,
        headers: await conn.headers(),
      });
      assert.deepEqual(await res.body.json(), { auth: "Bearer t0k3n" });
    } finally {
      await conn.close();
    }
  });

  test("without the CA the server is refused", async () => {
    const kc = kubeConfigFromString(`current-context: c
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${String(port)}"}}]
contexts: [{name: c, context: {cluster: c}}]`);
    const conn = await connect(kc);
    try {
      await assert.rejects(() => request(`${conn.server.origin}/version`, { dispatcher: conn.dispatcher }));
    } finally {
      await conn.close();
    }
  });
});

test("a 401 after the token file rotated: the client drops the cached token and retries once", async () => {
  const { createServer: createHttp } = await import("node:http");
  const { KubeClient } = await import("../../src/kube/client.ts");
  const { SecretResource } = await import("../../src/kube/resources.ts");
  const tokenPath = file("rotating-token", "old\n");
  let seen = 0;
  const srv = createHttp((req, res) => {
    seen++;
    if (req.headers.authorization !== "Bearer new") {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          reason: "Unauthorized",
          code: 401,
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "n" } }));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as AddressInfo).port;
  const kc = kubeConfigFromString(`current-context: c
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${String(port)}"}}]
users: [{name: u, user: {tokenFile: ${tokenPath}}}]
contexts: [{name: c, context: {cluster: c, user: u}}]`);
  const client = new KubeClient({ connection: await connect(kc) });
  try {
    await assert.rejects(() => client.get(SecretResource, "n", "s"), /Unauthorized|401/);
    writeFileSync(tokenPath, "new\n");
    const before = seen;
    const s = await client.get(SecretResource, "n", "s");
    assert.equal(s.metadata.name, "s");
    assert.equal(seen - before, 2, "one refused with the cached token, one accepted with the fresh one");
  } finally {
    await client.close();
    srv.close();
  }
});
