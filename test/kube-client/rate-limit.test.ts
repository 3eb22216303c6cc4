// The client-side rate limit on Kubernetes API requests (--kube-api-qps/--kube-api-burst):
// requests are spread at the configured rate, a cancelled one leaves the queue at once, and
// watches and Lease calls never wait behind a backlog.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../../src/kube/connection.ts";
import { CloudInstanceResource, LeaseResource, SecretResource } from "../../src/kube/resources.ts";
import { connectKube } from "../../src/operator.ts";
import { startKubeApiServer, type KubeApiServer } from "../kube/server.ts";
import { silentLogger } from "./harness.ts";
import { instance, secret } from "./objects.ts";

let server: KubeApiServer;
const clients: KubeClient[] = [];
before(async () => {
  server = await startKubeApiServer();
  const admin = await limited(undefined);
  await admin.create(SecretResource, secret("default", "s", { k: "v" }));
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server.close();
});

async function limited(rateLimit: { qps: number; burst: number } | undefined): Promise<KubeClient> {
  const c = new KubeClient({
    connection: await connect(kubeConfigFromString(server.kubeconfigYaml())),
    logger: silentLogger,
    ...(rateLimit ? { rateLimit } : {}),
  });
  clients.push(c);
  return c;
}

/** When each of `n` concurrent calls ended, in ms from their common start, in order. */
async function timedBurst(n: number, call: () => Promise<unknown>): Promise<number[]> {
  const started = performance.now();
  const ends = await Promise.all(
    Array.from({ length: n }, async () => {
      await call();
      return performance.now() - started;
    }),
  );
  return ends.sort((a, b) => a - b);
}

/** Timers and clocks may disagree by a millisecond or two; a token is never early by more. */
const SLACK_MS = 10;

test("a burst of requests passes the bucket's burst at once, then goes at the configured rate", async () => {
  const qps = 20;
  const burst = 5;
  const client = await limited({ qps, burst });
  const ends = await timedBurst(45, () => client.get(SecretResource, "default", "s"));
  ends.forEach((ms, i) => {
    const earliest = i < burst ? 0 : ((i - burst + 1) * 1000) / qps;
    assert.ok(
      ms >= earliest - SLACK_MS,
      `call ${String(i)} ended at ${ms.toFixed(0)} ms, before ${String(earliest)}`,
    );
  });
  assert.ok((ends.at(-1) ?? 0) >= 2_000 - SLACK_MS, "40 calls past the burst take 2 s at 20 qps");
  const unlimited = await limited(undefined);
  const free = await timedBurst(45, () => unlimited.get(SecretResource, "default", "s"));
  assert.ok((free.at(-1) ?? 0) < (ends.at(-1) ?? 0), "without a limit the same burst is not spread");
});

test("watches and Lease calls do not wait behind a backlog; a cancelled call leaves the queue at once", async () => {
  const client = await limited({ qps: 5, burst: 1 });
  const backlog = new AbortController();
  let backlogDone = 0;
  // 50 calls at 5 qps: ten seconds of backlog, cancelled when the test is done.
  const queued = Array.from({ length: 50 }, () =>
    client
      .get(SecretResource, "default", "s", { signal: backlog.signal })
      .then(() => backlogDone++)
      .catch(() => undefined),
  );
  const watching = new AbortController();
  const events = client.watch(CloudInstanceResource, { namespace: "w", signal: watching.signal });
  const first = events.next();
  const admin = await limited(undefined);
  await admin.create(CloudInstanceResource, instance("w", "seen"));
  const event = await first;
  assert.equal(event.value?.type, "ADDED");
  const lease = await client.create(LeaseResource, {
    metadata: { name: "leader", namespace: "default" },
    spec: { holderIdentity: "a", leaseDurationSeconds: 15 },
  });
  await client.update(LeaseResource, { ...lease, spec: { ...lease.spec, holderIdentity: "b" } });
  assert.ok(
    backlogDone < 10,
    `the watch event and the Lease calls came before the backlog (${String(backlogDone)} done)`,
  );

  const alone = new AbortController();
  const cancelled = client.get(SecretResource, "default", "s", { signal: alone.signal });
  alone.abort();
  await assert.rejects(cancelled);
  assert.ok(backlogDone < 10, "the cancelled call did not wait for its turn");

  watching.abort();
  await events.return(undefined);
  backlog.abort();
  await Promise.all(queued);
});

test("--kube-api-qps/--kube-api-burst reach the operator's client; 50/100 by default, 0 turns the limit off", async () => {
  const parse = (argv: string[]) => {
    const out = parseConfig(argv, {});
    assert.equal(out.kind, "config");
    return out.config;
  };
  assert.deepEqual(parse([]).kubeApiRateLimit, { qps: 200, burst: 400 });
  assert.equal(parse(["--kube-api-qps=0"]).kubeApiRateLimit, undefined);
  assert.throws(() => parse(["--kube-api-burst=0"]), /--kube-api-burst/);
  assert.throws(() => parse(["--kube-api-qps=-1"]), /--kube-api-qps/);

  const file = join(mkdtempSync(join(tmpdir(), "cio-ratelimit-")), "kubeconfig");
  server.writeKubeconfig(file);
  const config = parse([`--kubeconfig=${file}`, "--kube-api-qps=10", "--kube-api-burst=2"]);
  const client = await connectKube(config, silentLogger);
  clients.push(client);
  const ends = await timedBurst(7, () => client.get(SecretResource, "default", "s"));
  assert.ok((ends.at(-1) ?? 0) >= 500 - SLACK_MS, `7 calls at 10 qps, burst 2: ${String(ends.at(-1))} ms`);
});
