// The kube client's transport: proxies, the pooled connections (no new connection per call,
// whatever the TLS settings) and watches on a pool of their own.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { KubeClient } from "../../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../../src/kube/connection.ts";
import { chooseProxy } from "../../src/kube/proxy.ts";
import {
  CloudInstanceResource,
  EventResource,
  LeaseResource,
  SecretResource,
  type Resource,
} from "../../src/kube/resources.ts";
import { eventually, startApi } from "./harness.ts";
import {
  kubeconfig,
  startConnectProxy,
  startLoopbackApi,
  type ConnectProxy,
  type LoopbackApi,
} from "./loopback.ts";
import { instance } from "./objects.ts";

let api: LoopbackApi;
let proxy: ConnectProxy;
before(async () => {
  api = await startLoopbackApi();
  proxy = await startConnectProxy();
});
after(async () => {
  await api.close();
  await proxy.close();
});

async function getThrough(yaml: string, env: NodeJS.ProcessEnv): Promise<string> {
  const client = new KubeClient({
    connection: await connect(kubeConfigFromString(yaml), { env }),
    retry: { retries: 0 },
  });
  try {
    return (await client.get(SecretResource, "default", "via")).metadata.name ?? "";
  } finally {
    await client.close();
  }
}

describe("proxies", () => {
  // kube.test resolves nowhere: a request reaches the server only through the proxy.
  const server = () => `https://kube.test:${String(api.port)}`;

  test("a cluster's proxy-url tunnels through the proxy (HTTP CONNECT), TLS verified end to end", async () => {
    const before = proxy.targets.length;
    const yaml = kubeconfig({ server: server(), user: "{token: t}", cluster: `proxy-url: "${proxy.url}"` });
    assert.equal(await getThrough(yaml, {}), "via");
    assert.deepEqual(proxy.targets.slice(before), [`kube.test:${String(api.port)}`]);
    assert.equal(api.seen.at(-1)?.headers.authorization, "Bearer t");
  });

  test("HTTPS_PROXY from the environment is used; NO_PROXY naming the server goes direct", async () => {
    const yaml = kubeconfig({ server: server(), user: "{token: t}" });
    const before = proxy.targets.length;
    assert.equal(await getThrough(yaml, { HTTPS_PROXY: proxy.url }), "via");
    assert.equal(proxy.targets.length - before, 1);
    await assert.rejects(
      () => getThrough(yaml, { HTTPS_PROXY: proxy.url, NO_PROXY: "example.org,.test" }),
      /ENOTFOUND|EAI_AGAIN/,
      "direct: kube.test does not resolve",
    );
    assert.equal(proxy.targets.length - before, 1, "the proxy saw nothing more");
  });

  test("like client-go, loopback is never proxied and NO_PROXY may hold CIDR ranges", () => {
    const env = { HTTPS_PROXY: "http://proxy:3128", NO_PROXY: "10.0.0.0/8,fd00::/8" };
    assert.deepEqual(chooseProxy(new URL("https://127.0.0.1:6443"), undefined, env), { kind: "direct" });
    assert.deepEqual(chooseProxy(new URL("https://[::1]:6443"), undefined, env), { kind: "direct" });
    assert.deepEqual(chooseProxy(new URL("https://10.96.0.1"), undefined, env), { kind: "direct" });
    assert.deepEqual(chooseProxy(new URL("https://[fd00::1]"), undefined, env), { kind: "direct" });
    assert.equal(chooseProxy(new URL("https://11.0.0.1"), undefined, env).kind, "env");
    assert.deepEqual(chooseProxy(new URL("https://10.96.0.1"), "socks5://p:1080", env), {
      kind: "url",
      uri: "socks5://p:1080",
    });
  });
});

test("2,000 requests over a TLS kubeconfig open no more connections than the pool holds", async () => {
  const pool = 16;
  const conn = await connect(kubeConfigFromString(kubeconfig({ server: api.url, user: "{token: t}" })), {
    connections: pool,
  });
  const client = new KubeClient({ connection: conn, retry: { retries: 0 } });
  const opened = api.totalConnections();
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 2_000) {
        const i = next++;
        await client.get(SecretResource, "default", `s${String(i)}`);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    const newConnections = api.totalConnections() - opened;
    assert.ok(newConnections <= pool, `${String(newConnections)} connections for 2,000 requests`);
    assert.ok(api.openConnections() <= pool, `${String(api.openConnections())} sockets open`);
  } finally {
    await client.close();
  }
});

test("deletes carry DeleteOptions in their body and still keep their connection (no TLS handshake per delete)", async () => {
  // undici closes the socket after a body on a method not meant to carry one unless told
  // otherwise; the API server reads DeleteOptions from a DELETE's body as client-go sends it.
  const conn = await connect(kubeConfigFromString(kubeconfig({ server: api.url, user: "{token: t}" })), {
    connections: 1,
  });
  const client = new KubeClient({ connection: conn, retry: { retries: 0 } });
  const opened = api.totalConnections();
  const seen = api.seen.length;
  try {
    for (let i = 0; i < 50; i++)
      await client.delete(SecretResource, "default", `s${String(i)}`, {
        preconditions: { uid: `u${String(i)}` },
      });
    const deletes = api.seen.slice(seen).filter((r) => r.method === "DELETE");
    assert.equal(deletes.length, 50);
    assert.equal(api.totalConnections() - opened, 1, "one connection for 50 deletes");
  } finally {
    await client.close();
  }
});

test("90 open watches (30 namespaces × 3 kinds) do not hold up lists, status writes, Events or Lease renewals", async () => {
  const kube = await startApi();
  const { client } = kube;
  const ac = new AbortController();
  const watching: Promise<void>[] = [];
  try {
    const drain = async (it: AsyncGenerator): Promise<void> => {
      for await (const _ of it) {
        // Events are irrelevant here: the watch only has to stay open.
      }
    };
    for (let i = 0; i < 30; i++) {
      const namespace = `ns-${String(i)}`;
      const kinds: Resource[] = [CloudInstanceResource, SecretResource, EventResource];
      for (const res of kinds)
        watching.push(drain(client.watch(res, { namespace, signal: ac.signal, timeoutSeconds: 600 })));
    }
    await eventually(() => (kube.server.requestCounts().byVerb["watch"] ?? 0) >= 90, "90 watches open");
    const timed = async (what: string, call: () => Promise<unknown>): Promise<void> => {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`${what}: no answer within 3 s behind 90 watches`));
        }, 3_000);
      });
      await Promise.race([call(), stuck]).finally(() => {
        clearTimeout(timer);
      });
      const ms = performance.now() - started;
      assert.ok(ms < 1_000, `${what} took ${ms.toFixed(0)} ms behind 90 watches`);
    };
    const ci = await client.create(CloudInstanceResource, instance("ns-0", "busy"));
    await timed("a list", () => client.list(CloudInstanceResource, { namespace: "ns-0" }));
    await timed("a status write", () =>
      client.updateStatus(CloudInstanceResource, { ...ci, status: { phase: "Pending" } }),
    );
    await timed("an Event", () =>
      client.create(EventResource, {
        metadata: { name: "busy.1", namespace: "ns-0" },
        involvedObject: { kind: "CloudInstance", name: "busy", namespace: "ns-0" },
        reason: "Test",
      }),
    );
    const lease = await client.create(LeaseResource, {
      metadata: { name: "leader", namespace: "ns-0" },
      spec: { holderIdentity: "a", leaseDurationSeconds: 15 },
    });
    await timed("a Lease renewal", () =>
      client.update(LeaseResource, {
        ...lease,
        spec: { ...lease.spec, renewTime: new Date().toISOString() },
      }),
    );
  } finally {
    ac.abort();
    await Promise.allSettled(watching);
    await kube.close();
  }
});
