// `npm run bench`: convergence, API economy, memory/CPU and latency of the real operator
// process against the in-memory API server and the m2s simulator, side by side with two
// baselines (controller-runtime's defaults; the seed's fixed 5 s polling). Writes
// bench/results/<date>.json and prints a markdown table. `--smoke` is the short variant
// `npm test` runs.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startKubeApiServer } from "../test/kube/server.ts";
import { startM2sSimulator } from "../test/sim/m2s/index.ts";
import { credentialsSecret, SIMULATOR_ENDPOINTS } from "../test/sim/all.ts";
import { KubeClient } from "../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../src/kube/connection.ts";
import { createLogger } from "../src/observability/logger.ts";
import { CloudInstanceResource, SecretResource } from "../src/kube/resources.ts";
import { ANNOTATION_RECONCILE_REQUESTED_AT, type CloudInstance } from "../src/api/index.ts";
import { buildDist } from "../test/deploy/image.ts";
import {
  args,
  CONTROLLER_RUNTIME_DEFAULTS,
  forEachLimited,
  m2sInstance,
  machineInfo,
  NODE_ARGS,
  OURS,
  PRODUCTION_ENV,
  providerCalls,
  quantiles,
  round,
  say,
  type Scenario,
  scrape,
  sleep,
  smapsBreakdown,
  startOperator,
  sum,
  until,
  writes,
} from "./common.ts";
import { fairnessTable, runFairness, type FairnessResult } from "./fairness.ts";

const root = join(import.meta.dirname, "..");
if (
  args.get("help") === "true" &&
  !["operator-bound", "replicas", "scale"].includes(args.get("scenario") ?? "")
) {
  process.stdout.write(`node bench/run.ts [options]   (npm run bench -- [options])
  --sizes=100,1000,10000      operator runs, one per instance count
  --baseline-sizes=100,1000   baseline runs (empty: none)
  --smoke                     the short run npm test makes (30 instances)
  --out=DIR                   where the JSON result goes (default bench/results)
  --heap-snapshot             a heap snapshot of the operator at steady state, into --out
  --fairness=false            skip the two-account fairness run (bench/fairness.ts --help)
  --a-objects=1000            objects queued on account A in the fairness run (100 with --smoke)
  --sim-qps=N, --env="K=V;K=V", --node-args="..."   exploratory runs (see README)
Memory at 10,000 instances alone (peak RSS through a resync, smaps breakdown, heap):
  node bench/run.ts --sizes=10000 --baseline-sizes= --out=/tmp/bench
--scenario=provider-bound (default) runs the above; --scenario=operator-bound (100 accounts on
fast simulators, see README) has options of its own:
  node bench/run.ts --scenario=operator-bound [--n=10000] [--accounts=100] [--baseline=false]
    [--cpu-prof] [--heap-snapshot] [--out=DIR]
  node bench/run.ts --scenario=operator-bound --help   lists them all
--scenario=replicas: throughput with 1 and 3 replicas (--shards) and the handover after a
SIGKILL, on the operator-bound setup (node bench/run.ts --scenario=replicas --help)
--scenario=scale: 100,000 converged objects on one replica (cache sync, memory, CPU per 1,000
reconciles through a full pass, idle latency; see README):
  node bench/run.ts --scenario=scale [--n=100000] [--accounts=100] [--resync-period=S] [--out=DIR]
  node bench/run.ts --scenario=scale --help   lists them all
`);
  process.exit(0);
}
const smoke = args.get("smoke") === "true";
const sizes = (args.get("sizes") ?? (smoke ? "30" : "100,1000,10000")).split(",").map(Number);
const baselineSizes = (args.get("baseline-sizes") ?? (smoke ? "30" : "100,1000"))
  .split(",")
  .filter((v) => v !== "")
  .map(Number);
const outDir = args.get("out") ?? join(root, "bench", "results");
/** `--heap-snapshot`: write a heap snapshot of the operator at steady state into the out dir. */
const heapSnapshots = args.get("heap-snapshot") === "true";

/**
 * The simulated account: what the ideal is computed from. `--sim-qps` raises the account's
 * rate limit for quick exploratory runs; committed results use the default.
 */
const SIM = { transitionMs: 800, latencyMs: 5, rateLimitQps: Number(args.get("sim-qps") ?? 100) };
/** Provider calls a create needs at the least (create, one get) and a delete (delete, one get). */
const MIN_CALLS = 2;
/**
 * A resync period the simulated account can serve: every object is read once per period, so
 * the period must leave room under the provider's rate limit (20 s, or 1.5 x N / qps).
 */
const resyncMsFor = (n: number): number =>
  smoke ? 5_000 : Math.max(20_000, Math.ceil((1.5 * n) / SIM.rateLimitQps) * 1000);
/** Stay just under the simulator's limit so no request earns a 429. */
const PROVIDER = [
  `--provider-qps=${String(SIM.rateLimitQps - 5)}`,
  "--provider-burst=5",
  "--provider-max-concurrent=64",
];

const SCENARIOS: Scenario[] = [
  OURS,
  CONTROLLER_RUNTIME_DEFAULTS,
  { id: "fixed-5s-polling", title: "seed: fixed 5 s polling", flags: ["--poll-initial=5s", "--poll-max=5s"] },
];

interface RunResult {
  scenario: string;
  n: number;
  convergence: { readySeconds: number; idealSeconds: number; ratio: number };
  deletion: {
    goneSeconds: number;
    idealSeconds: number;
    ratio: number;
    providerCallsPerInstance: number;
    callsByOperation: Record<string, number>;
  };
  economy: {
    providerCallsPerInstanceToReady: number;
    kubeObjectWritesPerInstanceToReady: number;
    eventsPerInstanceToReady: number;
    resync: { periodSeconds: number; providerCallsPerInstance: number; kubeWrites: number; objects: number };
  };
  memory: {
    /** Peak resident size over the steady-state resync period. */
    rssMB: number;
    rssMeanMB: number;
    heapUsedMB: number;
    heapTotalMB: number;
    externalMB: number;
    residentBreakdownMB?: Record<string, number>;
    liveHeapMB?: number;
  };
  cpu: { secondsPer1000Reconciles: number; reconciles: number };
  latency: { idle: { p50ms: number; p99ms: number }; load: { p50ms: number; p99ms: number } };
}

async function run(scenario: Scenario, n: number, entry: string): Promise<RunResult> {
  say(`== ${scenario.id} N=${String(n)}`);
  const resyncMs = resyncMsFor(n);
  const api = await startKubeApiServer({ historyLimit: Math.max(10_000, n * 6) });
  const sim = await startM2sSimulator({ faults: { ...SIM } });
  const dir = mkdtempSync(join(tmpdir(), "cio-bench-"));
  const kubeconfig = join(dir, "kubeconfig");
  api.writeKubeconfig(kubeconfig);
  const kube = new KubeClient({
    connection: await connect(kubeConfigFromString(api.kubeconfigYaml())),
    logger: createLogger({ level: "silent" }),
  });
  await kube.create(
    SecretResource,
    credentialsSecret({ name: "m2s-creds", namespace: "bench" }, sim.credentials) as never,
  );
  const operator = await startOperator({
    entry,
    kubeconfig,
    flags: [
      `--resync-period=${String(resyncMs / 1000)}s`,
      "--log-level=error",
      `--allowed-endpoints=${SIMULATOR_ENDPOINTS}`,
      ...PROVIDER,
      ...scenario.flags,
    ],
    ...(heapSnapshots ? { extraNodeArgs: ["--heapsnapshot-signal=SIGUSR2"], cwd: outDir } : {}),
  });
  const { port } = operator;
  const pid = operator.child.pid;
  try {
    const instances = (): CloudInstance[] => api.objects("cloudinstances") as unknown as CloudInstance[];
    const isReady = (o: CloudInstance): boolean =>
      o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

    // Convergence: N objects at once.
    const m0 = await scrape(port);
    const w0 = writes(api);
    const p0 = providerCalls(sim);
    const names = Array.from({ length: n }, (_, i) => `vm-${String(i).padStart(5, "0")}`);
    const started = performance.now();
    await forEachLimited(names, 64, async (name) => {
      await kube.create(
        CloudInstanceResource,
        m2sInstance({ name, namespace: "bench" }, "m2s-creds", sim.url),
      );
    });
    await until(
      "all Ready",
      () => {
        const all = instances();
        return all.length === n && all.every(isReady);
      },
      3_600_000,
    );
    const readySeconds = (performance.now() - started) / 1000;
    const m1 = await scrape(port);
    const w1 = writes(api);
    const p1 = providerCalls(sim);
    const ideal = idealSeconds(n);

    // Steady state: one full resync period of unchanged objects.
    await sleep(1_000);
    const pr0 = providerCalls(sim);
    const wr0 = writes(api);
    // Resident memory is sampled through the steady state: a single reading lands anywhere
    // in the GC cycle, the peak is what a memory limit must hold.
    const rssSamples: number[] = [];
    const steadyUntil = performance.now() + resyncMs * 1.15;
    while (performance.now() < steadyUntil) {
      await sleep(Math.min(1_000, Math.max(0, steadyUntil - performance.now())));
      rssSamples.push(sum(await scrape(port), "process_resident_memory_bytes") / 2 ** 20);
    }
    const pr1 = providerCalls(sim);
    const wr1 = writes(api);
    const m2 = await scrape(port);
    const residentBreakdown = pid === undefined ? undefined : smapsBreakdown(pid);
    // A heap snapshot collects all garbage first: the heap after it is the live set.
    let liveHeapMB: number | undefined;
    if (heapSnapshots && pid !== undefined) {
      operator.child.kill("SIGUSR2");
      await sleep(Math.max(10_000, n * 3));
      liveHeapMB = round(sum(await scrape(port), "nodejs_heap_size_used_bytes") / 2 ** 20);
    }

    // Idle latency: single updates, one at a time.
    const probes = Math.min(200, n);
    for (let i = 0; i < probes; i++) {
      await kube.patch(CloudInstanceResource, "bench", names[i] ?? "", {
        metadata: { annotations: { [ANNOTATION_RECONCILE_REQUESTED_AT]: `probe-${String(i)}` } },
      });
      await sleep(20);
    }
    await sleep(500);
    const m3 = await scrape(port);

    // Deletion: everything at once, until every finalizer is gone.
    const pd0 = providerCalls(sim);
    const byOp0 = new Map(sim.requestCounts);
    const deleteStart = performance.now();
    await forEachLimited(names, 64, async (name) => {
      await kube.delete(CloudInstanceResource, "bench", name);
    });
    await until("all deleted", () => instances().length === 0, 3_600_000);
    const goneSeconds = (performance.now() - deleteStart) / 1000;
    const pd1 = providerCalls(sim);
    const deleteCalls = Object.fromEntries(
      [...sim.requestCounts]
        .map(([op, c]) => [op, round((c - (byOp0.get(op) ?? 0)) / n)] as const)
        .filter(([, c]) => c > 0),
    );
    const m4 = await scrape(port);

    const q = "workqueue_queue_duration_seconds";
    const reconciles =
      sum(m4, "controller_runtime_reconcile_total") - sum(m0, "controller_runtime_reconcile_total");
    const cpuSeconds = sum(m4, "process_cpu_seconds_total") - sum(m0, "process_cpu_seconds_total");
    const result: RunResult = {
      scenario: scenario.id,
      n,
      convergence: {
        readySeconds: round(readySeconds),
        idealSeconds: round(ideal),
        ratio: round(readySeconds / ideal),
      },
      deletion: {
        goneSeconds: round(goneSeconds),
        idealSeconds: round(ideal),
        ratio: round(goneSeconds / ideal),
        providerCallsPerInstance: round((pd1 - pd0) / n),
        callsByOperation: deleteCalls,
      },
      economy: {
        providerCallsPerInstanceToReady: round((p1 - p0) / n),
        kubeObjectWritesPerInstanceToReady: round((w1.objects - w0.objects - n) / n),
        eventsPerInstanceToReady: round((w1.events - w0.events) / n),
        resync: {
          periodSeconds: resyncMs / 1000,
          providerCallsPerInstance: round((pr1 - pr0) / n),
          kubeWrites: wr1.objects - wr0.objects,
          objects: n,
        },
      },
      memory: {
        rssMB: round(Math.max(...rssSamples)),
        rssMeanMB: round(rssSamples.reduce((a, b) => a + b, 0) / Math.max(1, rssSamples.length)),
        heapUsedMB: round(sum(m2, "nodejs_heap_size_used_bytes") / 2 ** 20),
        heapTotalMB: round(sum(m2, "nodejs_heap_size_total_bytes") / 2 ** 20),
        externalMB: round(sum(m2, "nodejs_external_memory_bytes") / 2 ** 20),
        ...(residentBreakdown === undefined ? {} : { residentBreakdownMB: residentBreakdown }),
        ...(liveHeapMB === undefined ? {} : { liveHeapMB }),
      },
      cpu: { secondsPer1000Reconciles: round((cpuSeconds / Math.max(1, reconciles)) * 1000), reconciles },
      latency: {
        idle: quantiles(m2, m3, q),
        load: quantiles(m0, m1, q),
      },
    };
    say(JSON.stringify(result));
    return result;
  } finally {
    await operator.stop();
    await kube.close();
    await sim.close();
    await api.close();
  }
}

/**
 * The best any operator could do against this simulated account: every instance needs MIN_CALLS
 * provider calls through a pipe of rateLimitQps, and the last one still has its transition to
 * go after its first call; plus a request's latency there and back.
 */
function idealSeconds(n: number): number {
  const q = SIM.rateLimitQps;
  return Math.max((MIN_CALLS * n) / q, n / q + SIM.transitionMs / 1000) + (2 * SIM.latencyMs) / 1000;
}

function table(results: RunResult[]): string {
  const title = (id: string): string => SCENARIOS.find((s) => s.id === id)?.title ?? id;
  const head =
    "| scenario | N | to Ready (s) | ideal (s) | ratio | delete (s) | ratio | provider calls/inst | kube writes/inst | events/inst | resync calls/inst | resync writes | RSS MB | heap MB | CPU s/1000 rec | latency idle p50/p99 ms | under load p50/p99 ms |";
  const sep = `|${"---|".repeat(17)}`;
  const rows = results.map((r) =>
    [
      title(r.scenario),
      r.n,
      r.convergence.readySeconds,
      r.convergence.idealSeconds,
      `${String(r.convergence.ratio)}×`,
      r.deletion.goneSeconds,
      `${String(r.deletion.ratio)}×`,
      r.economy.providerCallsPerInstanceToReady,
      r.economy.kubeObjectWritesPerInstanceToReady,
      r.economy.eventsPerInstanceToReady,
      r.economy.resync.providerCallsPerInstance,
      r.economy.resync.kubeWrites,
      r.memory.rssMB,
      r.memory.heapUsedMB,
      r.cpu.secondsPer1000Reconciles,
      `${String(r.latency.idle.p50ms)} / ${String(r.latency.idle.p99ms)}`,
      `${String(r.latency.load.p50ms)} / ${String(r.latency.load.p99ms)}`,
    ].join(" | "),
  );
  return [head, sep, ...rows.map((r) => `| ${r} |`)].join("\n");
}

async function main(): Promise<void> {
  const results: RunResult[] = [];
  let fairness: FairnessResult | undefined;
  // The shipped artifact, not src/main.ts: running TypeScript directly loads Node's type
  // stripper (a WebAssembly build of swc), ~30 MB of resident memory the image never has.
  const dist = buildDist("bench-dist-");
  if (heapSnapshots) mkdirSync(outDir, { recursive: true });
  try {
    for (const scenario of SCENARIOS) {
      const list = scenario.id === "ours" ? sizes : baselineSizes;
      for (const n of list) results.push(await run(scenario, n, join(dist.dir, "main.js")));
    }
    // Two accounts: B's time to Ready alone and with A's queue (issue #22).
    if (args.get("fairness") !== "false")
      fairness = await runFairness({
        entry: join(dist.dir, "main.js"),
        aObjects: Number(args.get("a-objects") ?? (smoke ? 100 : 1000)),
        samples: smoke ? 2 : 5,
        simQps: SIM.rateLimitQps,
        latencyMs: SIM.latencyMs,
        nodeArgs: NODE_ARGS,
        env: PRODUCTION_ENV,
      });
  } finally {
    dist.remove();
  }
  const report = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    simulator: { provider: "m2s", ...SIM },
    resyncPeriod: "max(20 s, 1.5 x N / rateLimitQps); 5 s in the smoke run",
    runtime: {
      entry: "dist/main.js (tsc -p tsconfig.build.json, as the image)",
      nodeArgs: NODE_ARGS.join(" "),
      ...PRODUCTION_ENV,
    },
    idealFormula: "max(2 calls x N / rateLimitQps, N / rateLimitQps + transition) + 2 x latency",
    smoke,
    results,
    ...(fairness === undefined ? {} : { fairness }),
  };
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${report.date.slice(0, 10)}${smoke ? "-smoke" : ""}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  const fair = fairness === undefined ? "" : `\n\nFairness between accounts:\n\n${fairnessTable(fairness)}`;
  process.stdout.write(`${table(results)}${fair}\n\nresults: ${file}\n`);
}

const scenarioName = args.get("scenario") ?? "provider-bound";
const chosen: () => Promise<void> =
  scenarioName === "operator-bound"
    ? async () => (await import("./operator-bound.ts")).main()
    : scenarioName === "replicas"
      ? async () => (await import("./replicas.ts")).main()
      : scenarioName === "scale"
        ? async () => (await import("./scale.ts")).main()
        : scenarioName === "provider-bound"
          ? main
          : () =>
              Promise.reject(
                new Error(
                  `unknown --scenario=${scenarioName} (provider-bound, operator-bound, replicas, scale)`,
                ),
              );
chosen().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
