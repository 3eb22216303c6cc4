// Loading the configuration with client-node's KubeConfig, and what we add around it
// (kubectl's merge rules, controller-runtime's order, refusals client-go makes). Credentials
// are checked by what reaches a loopback TLS server.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { KubeClient } from "../../src/kube/client.ts";
import {
  connect,
  KubeConfigError,
  kubeConfigFromString,
  loadKubeConfig,
  resolveKubeConfig,
  type KubeConfigSource,
} from "../../src/kube/connection.ts";
import { SecretResource } from "../../src/kube/resources.ts";
import { b64, kubeconfig, startLoopbackApi, testPki, type LoopbackApi } from "../kube-client/loopback.ts";

const dir = mkdtempSync(join(tmpdir(), "cio-kubeconfig-"));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const rejectsConfig = (source: KubeConfigSource, message: RegExp) =>
  assert.rejects(
    () => resolveKubeConfig(source),
    (e: unknown) => e instanceof KubeConfigError && e.code === "ERR_KUBE_CONFIG" && message.test(e.message),
  );

let api: LoopbackApi;
before(async () => {
  api = await startLoopbackApi();
});
after(async () => {
  await api.close();
});

/** One GET through a KubeClient made from `source`; returns the headers the server saw. */
async function headersSent(source: KubeConfigSource): Promise<Record<string, string | string[] | undefined>> {
  const client = new KubeClient({ connection: await connect(source), retry: { retries: 0 } });
  try {
    const before = api.seen.length;
    await client.get(SecretResource, "default", "s");
    const seen = api.seen.slice(before);
    assert.equal(seen.length, 1);
    return seen[0]?.headers ?? {};
  } finally {
    await client.close();
  }
}

describe("where the configuration comes from", () => {
  const a = () =>
    file(
      "a.yaml",
      `apiVersion: v1
clusters: [{name: dev, cluster: {server: "https://dev.example:6443"}}]
users: [{name: me, user: {token: first-token}}]
contexts: [{name: dev, context: {cluster: dev, user: me, namespace: team-a}}]
`,
    );
  const b = () =>
    file(
      "b.yaml",
      `apiVersion: v1
current-context: dev
clusters: [{name: dev, cluster: {server: "https://ignored.example"}}, {name: prod, cluster: {server: "https://prod.example"}}]
users: [{name: me, user: {token: second-token}}]
contexts: [{name: prod, context: {cluster: prod, user: me}}]
`,
    );

  test("KUBECONFIG files merge like kubectl: the first to name an entry wins, current-context from the first that sets one", async () => {
    const env = { KUBECONFIG: [a(), b()].join(delimiter) };
    const dev = await resolveKubeConfig(loadKubeConfig({ env }));
    assert.equal(dev.server.href, "https://dev.example:6443/");
    assert.equal(dev.namespace, "team-a");
    assert.equal(
      dev.kc.getCurrentUser()?.token,
      "first-token",
      "client-node would have thrown on the duplicate",
    );
    const prod = await resolveKubeConfig(loadKubeConfig({ env, context: "prod" }));
    assert.equal(prod.server.host, "prod.example");
  });

  test("a missing file in the KUBECONFIG list is skipped (client-go); all missing is an error", async () => {
    const env = { KUBECONFIG: [join(dir, "nope.yaml"), a(), b()].join(delimiter) };
    assert.equal((await resolveKubeConfig(loadKubeConfig({ env }))).server.host, "dev.example:6443");
    await rejectsConfig(
      loadKubeConfig({ env: { KUBECONFIG: join(dir, "nope.yaml") } }),
      /none of the KUBECONFIG files exist/,
    );
  });

  test("the --kubeconfig flag wins over KUBECONFIG, and a missing flag file is an error", async () => {
    const env = { KUBECONFIG: b() };
    const flagged = await resolveKubeConfig(loadKubeConfig({ kubeconfig: a(), env, context: "dev" }));
    assert.equal(flagged.server.host, "dev.example:6443");
    await rejectsConfig(loadKubeConfig({ kubeconfig: join(dir, "nope.yaml"), env }), /cannot read/);
    // KUBECONFIG's value reaches the operator's --kubeconfig (src/config.ts): a list stays a list.
    const listed = loadKubeConfig({
      kubeconfig: [join(dir, "nope.yaml"), a(), b()].join(delimiter),
      env: {},
    });
    assert.equal((await resolveKubeConfig(listed)).server.host, "dev.example:6443");
  });

  test("in-cluster comes before ~/.kube/config (controller-runtime's order); the namespace file is read", async () => {
    const root = mkdtempSync(join(tmpdir(), "cio-sa-"));
    const sa = join(root, "var/run/secrets/kubernetes.io/serviceaccount");
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, "token"), "pod-token\n");
    writeFileSync(join(sa, "ca.crt"), testPki().ca);
    writeFileSync(join(sa, "namespace"), "operators\n");
    const home = mkdtempSync(join(tmpdir(), "cio-home-"));
    mkdirSync(join(home, ".kube"));
    writeFileSync(join(home, ".kube", "config"), kubeconfig({ server: "https://home.example" }));
    const env = {
      HOME: home,
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: String(api.port),
    };
    const source = loadKubeConfig({ env, serviceAccountRoot: root });
    const loaded = await resolveKubeConfig(source);
    assert.equal(loaded.server.href, `https://127.0.0.1:${String(api.port)}/`);
    assert.equal(loaded.namespace, "operators");
    assert.equal(
      (await headersSent(source))["authorization"],
      "Bearer pod-token",
      "trailing newline dropped",
    );
    const outside = await resolveKubeConfig(
      loadKubeConfig({ env: { HOME: home }, serviceAccountRoot: root }),
    );
    assert.equal(outside.server.host, "home.example", "outside a pod: the home file");
    await rejectsConfig(loadKubeConfig({ env: { HOME: dir } }), /not running in a cluster/);
  });
});

describe("refusals with a clear error", () => {
  test("a context naming an undefined user is refused, not silently anonymous", async () => {
    await rejectsConfig(
      kubeConfigFromString(kubeconfig({ server: api.url, contextUser: "typo" })),
      /user "typo" of context "c" is not defined/,
    );
  });

  test("no current context, an unknown context or cluster, a bad server URL", async () => {
    await rejectsConfig(kubeConfigFromString("clusters: []"), /no current-context/);
    await rejectsConfig(
      kubeConfigFromString("current-context: nope\ncontexts: []"),
      /context "nope" is not defined/,
    );
    await rejectsConfig(
      kubeConfigFromString("current-context: c\ncontexts: [{name: c, context: {cluster: gone}}]"),
      /cluster "gone" of context "c" is not defined/,
    );
    await rejectsConfig(
      kubeConfigFromString(`current-context: c
clusters: [{name: k, cluster: {server: "not a url"}}]
contexts: [{name: c, context: {cluster: k}}]`),
      /no valid server URL/,
    );
  });

  test("a CA together with insecure-skip-tls-verify is refused (client-go does)", async () => {
    await rejectsConfig(
      kubeConfigFromString(kubeconfig({ server: api.url, cluster: "insecure-skip-tls-verify: true" })),
      /insecure-skip-tls-verify is not allowed/,
    );
  });
});

describe("credentials, as the server receives them", () => {
  test("a token, client certificates from files relative to the kubeconfig, TLS verified by the CA", async () => {
    const { ca, clientCert, clientKey } = testPki();
    const sub = join(dir, "certs");
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, "ca.pem"), ca);
    writeFileSync(join(sub, "client.pem"), clientCert);
    writeFileSync(join(sub, "client.key"), clientKey);
    const p = join(sub, "kubeconfig");
    writeFileSync(
      p,
      `current-context: c
clusters: [{name: k, cluster: {server: "${api.url}", certificate-authority: ca.pem}}]
users: [{name: u, user: {token: t0k3n, client-certificate: client.pem, client-key: client.key}}]
contexts: [{name: c, context: {cluster: k, user: u}}]`,
    );
    assert.equal((await headersSent(loadKubeConfig({ kubeconfig: p })))["authorization"], "Bearer t0k3n");
    assert.equal(api.seen.at(-1)?.clientCN, "exec-user", "the client certificate was presented");
  });

  test("without the CA the server is refused", async () => {
    const yaml = `current-context: c
clusters: [{name: k, cluster: {server: "${api.url}"}}]
contexts: [{name: c, context: {cluster: k}}]`;
    const client = new KubeClient({
      connection: await connect(kubeConfigFromString(yaml)),
      retry: { retries: 0 },
    });
    try {
      await assert.rejects(() => client.get(SecretResource, "default", "s"), /certificate/);
    } finally {
      await client.close();
    }
  });

  test("basic auth", async () => {
    const h = await headersSent(
      kubeConfigFromString(kubeconfig({ server: api.url, user: "{username: u, password: p}" })),
    );
    assert.equal(h["authorization"], `Basic ${b64("u:p")}`);
  });

  test("impersonation: user, groups, uid and extras are sent", async () => {
    const h = await headersSent(
      kubeConfigFromString(
        kubeconfig({
          server: api.url,
          user: `{token: t, as: alice, as-groups: [devs, ops], as-uid: "42", as-user-extra: {scopes: [read, write]}}`,
        }),
      ),
    );
    assert.equal(h["impersonate-user"], "alice");
    assert.equal(h["impersonate-group"], "devs, ops");
    assert.equal(h["impersonate-uid"], "42");
    assert.equal(h["impersonate-extra-scopes"], "read, write");
  });

  test("OIDC (client-node's auth-provider): an unexpired id-token is sent as the bearer token", async () => {
    const jwt = [
      b64url({ alg: "none" }),
      b64url({ iss: "https://issuer.example", exp: Math.floor(Date.now() / 1000) + 3600 }),
      "sig",
    ].join(".");
    const user = `{auth-provider: {name: oidc, config: {client-id: op, id-token: "${jwt}", idp-issuer-url: "https://issuer.example"}}}`;
    const h = await headersSent(kubeConfigFromString(kubeconfig({ server: api.url, user })));
    assert.equal(h["authorization"], `Bearer ${jwt}`);
  });

  test("a token file (kubectl's tokenFile, which client-node reads under another key) wins over a token", async () => {
    const path = file("user-token", "from-file\n");
    const h = await headersSent(
      kubeConfigFromString(kubeconfig({ server: api.url, user: `{token: inline, tokenFile: ${path}}` })),
    );
    assert.equal(h["authorization"], "Bearer from-file");
  });

  test("a 401 after the token file rotated: the cached token is dropped and the call repeated once", async () => {
    const path = file("rotating-token", "old\n");
    let accepted = "Bearer old";
    api.respond = (req) => (req.headers.authorization === accepted ? 200 : 401);
    const client = new KubeClient({
      connection: await connect(
        kubeConfigFromString(kubeconfig({ server: api.url, user: `{tokenFile: ${path}}` })),
      ),
    });
    try {
      await client.get(SecretResource, "default", "s");
      // The server now wants the rotated token; ours is cached (token files are re-read each minute).
      writeFileSync(path, "new\n");
      accepted = "Bearer new";
      const before = api.seen.length;
      const s = await client.get(SecretResource, "default", "s");
      assert.equal(s.metadata.name, "s");
      assert.deepEqual(
        api.seen.slice(before).map((r) => r.headers.authorization),
        ["Bearer old", "Bearer new"],
        "one refused with the cached token, one accepted with the fresh one",
      );
      accepted = "Bearer revoked";
      await assert.rejects(() => client.get(SecretResource, "default", "s"), /Unauthorized|401/);
    } finally {
      api.respond = () => 200;
      await client.close();
    }
  });
});

function b64url(o: object): string {
  return Buffer.from(JSON.stringify(o)).toString("base64url");
}
