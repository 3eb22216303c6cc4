// `node bench/fairness.ts` (and part of `npm run bench`): fairness between accounts (issue #22).
// Two m2s accounts, each its own simulator (its own rate limit), one operator process (the
// built dist/main.js, as the image runs it) against the in-memory API server. Measures how
// long account B's new instance takes to be Ready alone, then with 1,000 objects queued on
// account A (created first, all at once), and reports the ratio; the target is 1.5× or less.
// `--help` for the options.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startKubeApiServer } from "../test/kube/server.ts";
import { startM2sSimulator, type M2sSimulator } from "../test/sim/m2s/index.ts";
import { credentialsSecret, SIMULATOR_ENDPOINTS } from "../test/sim/all.ts";
import { KubeClient } from "../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../src/kube/connection.ts";
import { createLogger } from "../src/observability/logger.ts";
import { CloudInstanceResource, SecretResource } from "../src/kube/resources.ts";
import type { CloudInstance } from "../src/api/index.ts";
import { buildDist, imageRuntime } from "../test/deploy/image.ts";
import { parseMetrics } from "./prometheus.ts";
import { forEachLimited, freePortPair, m2sInstance, machineInfo, reapOnExit, sleep } from "./common.ts";

export const FAIRNESS_HELP = `node bench/fairness.ts [options]   (also run by npm run bench; there: --fairness=false skips it)
  Account B's time to Ready alone, then with N objects queued on account A (two m2s
  simulators, one operator). Target: with A's queue, B within 1.5x of B alone.
  --a-objects=1000   objects queued on account A
  --samples=5        B instances, created together, measured in each phase (median reported)
  --sim-qps=100      each simulated account's rate limit (the operator runs 5 under it)
  --latency-ms=5     each simulated request's latency
  --out=DIR          where the JSON result goes (default bench/results; standalone runs only)
`;

export interface FairnessOptions {
  /** dist/main.js to run. */
  entry: string;
  aObjects: number;
  samples: number;
  simQps: number;
  latencyMs: number;
  /** Node's flags and environment for the operator (the image's, as the main bench). */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

export interface FairnessResult {
  aObjects: number;
  samples: number;
  simulator: { transitionMs: number; latencyMs: number; rateLimitQps: number };
  operatorFlags: string[];
  /** B's time to Ready (s), each sample. */
  alone: number[];
  withQueueOnA: number[];
  aloneMedianSeconds: number;
  withQueueOnAMedianSeconds: number;
  /** withQueueOnA median / alone median; the target is 1.5 or less. */
  ratio: number;
  target: number;
  met: boolean;
  /** A's objects still not Ready when B's last instance was: A really had a queue throughout. */
  aNotReadyAtLastSample: number;
  /** A's requests the simulator received by B's last sample (A was served meanwhile). */
  aRequestsByLastSample: number;
  throttled: Record<string, number>;
  reconcileErrors: number;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};
const isReady = (o: CloudInstance): boolean =>
  o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** One phase: a fresh API server, two accounts, one operator; B's samples after A's queue (if any). */
async function phase(
  o: FairnessOptions,
  aObjects: number,
  flags: string[],
  sim: { transitionMs: number; latencyMs: number; rateLimitQps: number },
): Promise<{
  samples: number[];
  aNotReady: number;
  aRequests: number;
  throttled: Record<string, number>;
  errors: number;
}> {
  const api = await startKubeApiServer({ historyLimit: Math.max(10_000, aObjects * 8) });
  const a = await startM2sSimulator({ faults: { ...sim }, apiKey: "m2s-account-a-0123456789" });
  const b = await startM2sSimulator({ faults: { ...sim }, apiKey: "m2s-account-b-0123456789" });
  const dir = mkdtempSync(join(tmpdir(), "cio-fair-"));
  const kubeconfig = join(dir, "kubeconfig");
  api.writeKubeconfig(kubeconfig);
  const kube = new KubeClient({
    connection: await connect(kubeConfigFromString(api.kubeconfigYaml())),
    logger: createLogger({ level: "silent" }),
  });
  const ns = "bench";
  for (const [name, s] of [
    ["account-a", a],
    ["account-b", b],
  ] as const)
    await kube.create(SecretResource, credentialsSecret({ name, namespace: ns }, s.credentials) as never);
  const manifest = (name: string, account: string, s: M2sSimulator): never =>
    m2sInstance({ name, namespace: ns }, account, s.url) as never;
  const port = await freePortPair();
  const operator: ChildProcess = spawn(
    process.execPath,
    [
      ...(o.nodeArgs ?? []),
      o.entry,
      `--kubeconfig=${kubeconfig}`,
      `--metrics-bind-address=127.0.0.1:${String(port)}`,
      `--health-probe-bind-address=127.0.0.1:${String(port + 1)}`,
      "--metrics-secure=false",
      "--log-level=error",
      `--allowed-endpoints=${SIMULATOR_ENDPOINTS}`,
      ...flags,
    ],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...o.env } },
  );
  reapOnExit(operator);
  const exited = new Promise<void>((r) => operator.once("exit", () => r()));
  // Logs are at error level: keep the tail to explain an early exit.
  let logTail = "";
  operator.stdout?.on("data", (chunk: Buffer) => {
    logTail = (logTail + chunk.toString()).slice(-4000);
  });
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${String(port + 1)}/readyz`)).ok) break;
      } catch {
        // not listening yet
      }
      if (operator.exitCode !== null || operator.signalCode !== null)
        throw new Error(
          `fairness bench: the operator exited (${String(operator.exitCode ?? operator.signalCode)}):\n${logTail}`,
        );
      if (i > 600) throw new Error("fairness bench: the operator never became ready");
      await sleep(100);
    }
    const instances = (): CloudInstance[] => api.objects("cloudinstances") as unknown as CloudInstance[];
    const names = Array.from({ length: aObjects }, (_, i) => `a-${String(i).padStart(5, "0")}`);
    await forEachLimited(names, 64, async (name) => {
      await kube.create(CloudInstanceResource, manifest(name, "account-a", a));
    });
    // B's instances are created together right after A's queue, so every sample meets the
    // same backlog (one after the other, later ones would find A's queue drained).
    const bNames = Array.from({ length: o.samples }, (_, i) => `b-${String(i)}`);
    const started = performance.now();
    await Promise.all(
      bNames.map((name) => kube.create(CloudInstanceResource, manifest(name, "account-b", b))),
    );
    const readyAt = new Map<string, number>();
    while (readyAt.size < bNames.length) {
      for (const obj of instances())
        if (obj.metadata.name?.startsWith("b-") === true && !readyAt.has(obj.metadata.name) && isReady(obj))
          readyAt.set(obj.metadata.name, performance.now());
      if (performance.now() - started > 600_000) throw new Error("fairness bench: B's instances never Ready");
      await sleep(10);
    }
    const samples = bNames.map((n) => round(((readyAt.get(n) ?? started) - started) / 1000));
    const aNotReady = instances().filter((x) => x.metadata.name?.startsWith("a-") && !isReady(x)).length;
    const aRequests = a.arrived();
    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text());
    const throttled: Record<string, number> = {};
    for (const m of metrics.filter((x) => x.name === "cloud_instance_provider_throttled_total"))
      throttled[m.labels.reason ?? ""] = (throttled[m.labels.reason ?? ""] ?? 0) + m.value;
    const errors = metrics
      .filter((x) => x.name === "controller_runtime_reconcile_errors_total")
      .reduce((s, x) => s + x.value, 0);
    return { samples, aNotReady, aRequests, throttled, errors };
  } finally {
    operator.kill("SIGTERM");
    await exited;
    await kube.close();
    await a.close();
    await b.close();
    await api.close();
  }
}

export async function runFairness(o: FairnessOptions): Promise<FairnessResult> {
  const sim = { transitionMs: 800, latencyMs: o.latencyMs, rateLimitQps: o.simQps };
  // As the main bench: just under each account's limit, so no request earns a 429.
  const flags = [
    `--provider-qps=${String(o.simQps - 5)}`,
    "--provider-burst=5",
    "--provider-max-concurrent=64",
  ];
  // The bench process's own API server and simulators are cold in the first phase (it came
  // out ~0.5 s slower, whichever phase ran first): one phase to warm them, not reported.
  process.stderr.write("== fairness: warm-up\n");
  await phase(o, 0, flags, sim);
  process.stderr.write(`== fairness: B alone (${String(o.samples)} samples)\n`);
  const alone = await phase(o, 0, flags, sim);
  process.stderr.write(`== fairness: B with ${String(o.aObjects)} objects queued on A\n`);
  const loaded = await phase(o, o.aObjects, flags, sim);
  const aloneMedian = median(alone.samples);
  const loadedMedian = median(loaded.samples);
  const ratio = round(loadedMedian / aloneMedian);
  return {
    aObjects: o.aObjects,
    samples: o.samples,
    simulator: sim,
    operatorFlags: flags,
    alone: alone.samples,
    withQueueOnA: loaded.samples,
    aloneMedianSeconds: round(aloneMedian),
    withQueueOnAMedianSeconds: round(loadedMedian),
    ratio,
    target: 1.5,
    met: ratio <= 1.5,
    aNotReadyAtLastSample: loaded.aNotReady,
    aRequestsByLastSample: loaded.aRequests,
    throttled: loaded.throttled,
    reconcileErrors: loaded.errors,
  };
}

export function fairnessTable(r: FairnessResult): string {
  return [
    "| B's time to Ready | median (s) | samples (s) |",
    "|---|---|---|",
    `| alone | ${String(r.aloneMedianSeconds)} | ${r.alone.join(", ")} |`,
    `| with ${String(r.aObjects)} objects queued on A | ${String(r.withQueueOnAMedianSeconds)} | ${r.withQueueOnA.join(", ")} |`,
    "",
    `ratio ${String(r.ratio)}× (target ≤ ${String(r.target)}×: ${r.met ? "met" : "NOT met"}); ` +
      `A still had ${String(r.aNotReadyAtLastSample)} objects not Ready at B's last sample; ` +
      `A's reconciles put off: ${JSON.stringify(r.throttled)}; reconcile errors: ${String(r.reconcileErrors)}`,
  ].join("\n");
}

if (import.meta.main) {
  const args = new Map(
    process.argv.slice(2).map((x) => {
      const [k = "", ...v] = x.replace(/^--/, "").split("=");
      return [k, v.length === 0 ? "true" : v.join("=")] as const;
    }),
  );
  if (args.get("help") === "true") {
    process.stdout.write(FAIRNESS_HELP);
    process.exit(0);
  }
  const outDir = args.get("out") ?? join(import.meta.dirname, "results");
  const dist = buildDist("bench-fair-dist-");
  const image = imageRuntime();
  runFairness({
    nodeArgs: image.nodeArgs,
    env: Object.fromEntries(
      Object.entries(image.env).filter(
        ([k]) => k === "NODE_OPTIONS" || k.startsWith("MALLOC_") || k === "GLIBC_TUNABLES",
      ),
    ),
    entry: join(dist.dir, "main.js"),
    aObjects: Number(args.get("a-objects") ?? 1000),
    samples: Number(args.get("samples") ?? 5),
    simQps: Number(args.get("sim-qps") ?? 100),
    latencyMs: Number(args.get("latency-ms") ?? 5),
  })
    .then((r) => {
      const report = {
        date: new Date().toISOString(),
        machine: machineInfo(),
        fairness: r,
      };
      mkdirSync(outDir, { recursive: true });
      const file = join(outDir, `fairness-${report.date.slice(0, 10)}.json`);
      writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(`${fairnessTable(r)}\n\nresults: ${file}\n`);
      dist.remove();
      process.exit(0);
    })
    .catch((err: unknown) => {
      dist.remove();
      process.stderr.write(
        `fairness bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    });
}
