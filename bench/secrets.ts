// `node bench/secrets.ts`: what the cluster's unrelated Secrets cost the operator. Two runs of
// the operator as the image runs it, against the in-memory API server and the m2s simulator,
// with the same CloudInstances: one in a cluster without other Secrets, one where 200 Secrets
// of 1 MB each (Helm-release-sized, unlabelled) exist before it starts and more are written
// while it runs. Only Secrets labelled as credentials are listed and watched, so the resident
// memory should not move with them (issue #21: within 10 MB). Prints a markdown table and
// writes bench/results/secrets-<date>.json. `--help` for the options.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startKubeApiServer } from "../test/kube/server.ts";
import { startM2sSimulator } from "../test/sim/m2s/index.ts";
import { credentialsSecret, SIMULATOR_ENDPOINTS } from "../test/sim/all.ts";
import { buildDist } from "../test/deploy/image.ts";
import { KubeClient } from "../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../src/kube/connection.ts";
import { createLogger } from "../src/observability/logger.ts";
import { CloudInstanceResource, SecretResource } from "../src/kube/resources.ts";
import type { CloudInstance } from "../src/api/index.ts";
import {
  args,
  forEachLimited,
  m2sInstance,
  round,
  say,
  scrape,
  sleep,
  startOperator,
  sum,
  until,
} from "./common.ts";

if (args.get("help") === "true") {
  process.stdout.write(`node bench/secrets.ts [options]
  Resident memory of the operator with and without unrelated Secrets in the cluster.
  --secrets=200          unrelated Secrets present before the operator starts
  --secret-bytes=1000000 size of each (random bytes, base64 in the API)
  --churn=40             more unrelated Secrets created and updated while it runs
  --instances=50         CloudInstances (m2s) in both runs
  --sample-s=20          seconds of RSS sampling at steady state (peak and median reported)
  --out=DIR              where the JSON result goes (default bench/results)
`);
  process.exit(0);
}

const num = (k: string, d: number): number => Number(args.get(k) ?? d);
const SECRETS = num("secrets", 200);
const SECRET_BYTES = num("secret-bytes", 1_000_000);
const CHURN = num("churn", 40);
const INSTANCES = num("instances", 50);
const SAMPLE_S = num("sample-s", 20);
const outDir = args.get("out") ?? join(import.meta.dirname, "results");

interface Run {
  variant: "without" | "with";
  unrelatedSecrets: number;
  unrelatedMB: number;
  readySeconds: number;
  rssPeakMB: number;
  rssMedianMB: number;
  heapMB: number;
}

const unrelated = (namespace: string, name: string): Record<string, unknown> => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace, labels: { owner: "helm" } },
  type: "helm.sh/release.v1",
  data: { release: randomBytes(SECRET_BYTES).toString("base64") },
});

async function run(variant: Run["variant"], entry: string): Promise<Run> {
  say(`== ${variant} unrelated Secrets`);
  const api = await startKubeApiServer({ historyLimit: 10_000 });
  const sim = await startM2sSimulator({ faults: { transitionMs: 200, latencyMs: 1, rateLimitQps: 1000 } });
  const dir = mkdtempSync(join(tmpdir(), "cio-bench-secrets-"));
  const kubeconfig = join(dir, "kubeconfig");
  api.writeKubeconfig(kubeconfig);
  const kube = new KubeClient({
    connection: await connect(kubeConfigFromString(api.kubeconfigYaml())),
    logger: createLogger({ level: "silent" }),
  });
  const many = variant === "with";
  const names = (n: number, prefix: string): string[] =>
    Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}`);
  // Spread over namespaces, as Helm releases are; one of them is the instances' own.
  const nsOf = (i: number): string => (i % 4 === 0 ? "bench" : `apps-${String(i % 4)}`);
  if (many)
    await forEachLimited(
      names(SECRETS, "sh.helm.release.v1.app").map((n, i) => [nsOf(i), n] as const),
      8,
      async ([ns, n]) => {
        await kube.create(SecretResource, unrelated(ns, n) as never);
      },
    );
  await kube.create(
    SecretResource,
    credentialsSecret({ name: "m2s-creds", namespace: "bench" }, sim.credentials) as never,
  );
  const op = await startOperator({
    entry,
    kubeconfig,
    flags: [`--allowed-endpoints=${SIMULATOR_ENDPOINTS}`, "--log-level=error", "--resync-period=10s"],
  });
  try {
    const started = performance.now();
    await forEachLimited(names(INSTANCES, "vm"), 16, async (name) => {
      await kube.create(
        CloudInstanceResource,
        m2sInstance({ name, namespace: "bench" }, "m2s-creds", sim.url),
      );
    });
    const isReady = (o: CloudInstance): boolean =>
      o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
    await until(
      "all Ready",
      () => {
        const all = api.objects("cloudinstances") as unknown as CloudInstance[];
        return all.length === INSTANCES && all.every(isReady);
      },
      600_000,
    );
    const readySeconds = (performance.now() - started) / 1000;
    // Secrets written while it runs: a watch on every Secret would carry each one in full.
    const churn = many
      ? forEachLimited(names(CHURN, "sh.helm.release.v1.late"), 4, async (n) => {
          await kube.create(SecretResource, unrelated("bench", n) as never);
          await sleep(100);
        })
      : Promise.resolve();
    const samples: number[] = [];
    let heapMB = 0;
    const until_ = performance.now() + SAMPLE_S * 1000;
    while (performance.now() < until_) {
      const m = await scrape(op.port);
      samples.push(sum(m, "process_resident_memory_bytes") / 2 ** 20);
      heapMB = Math.max(heapMB, sum(m, "nodejs_heap_size_used_bytes") / 2 ** 20);
      await sleep(500);
    }
    await churn;
    samples.sort((a, b) => a - b);
    return {
      variant,
      unrelatedSecrets: many ? SECRETS + CHURN : 0,
      unrelatedMB: many ? Math.round(((SECRETS + CHURN) * SECRET_BYTES) / 1e6) : 0,
      readySeconds: round(readySeconds),
      rssPeakMB: round(samples.at(-1) ?? 0),
      rssMedianMB: round(samples[Math.floor(samples.length / 2)] ?? 0),
      heapMB: round(heapMB),
    };
  } finally {
    await op.stop();
    await sim.close();
    await api.close();
  }
}

async function main(): Promise<void> {
  const dist = buildDist("bench-secrets-");
  try {
    const entry = join(dist.dir, "main.js");
    const without = await run("without", entry);
    const withMany = await run("with", entry);
    const report = {
      date: new Date().toISOString(),
      options: { SECRETS, SECRET_BYTES, CHURN, INSTANCES, SAMPLE_S },
      runs: [without, withMany],
      peakDifferenceMB: round(withMany.rssPeakMB - without.rssPeakMB),
      target: "within 10 MB",
    };
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `secrets-${report.date.slice(0, 10)}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(
      [
        "| unrelated Secrets in the cluster | all Ready | RSS peak / median | V8 heap used (peak) |",
        "| --- | --- | --- | --- |",
        ...report.runs.map(
          (r) =>
            `| ${r.unrelatedSecrets === 0 ? "none" : `${String(r.unrelatedSecrets)} (${String(r.unrelatedMB)} MB)`} | ${String(r.readySeconds)} s | ${String(r.rssPeakMB)} / ${String(r.rssMedianMB)} MB | ${String(r.heapMB)} MB |`,
        ),
        "",
        `peak difference: ${String(report.peakDifferenceMB)} MB (target: within 10 MB)`,
        `results: ${file}`,
        "",
      ].join("\n"),
    );
  } finally {
    dist.remove();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
