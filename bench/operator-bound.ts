// `npm run bench -- --scenario=operator-bound`: the operator is the bottleneck, not the provider.
// 10,000 CloudInstances over 100 accounts (one credentials Secret and one API key each) on a fast
// m2s simulator (1,000 requests/s per account, 500 ms transitions, 1 ms latency), applied at once,
// then deleted at once. The ideal is the simulator's transition plus the time the same API writes
// take from an empty reconciler (bench/empty-reconciler.ts: a separate process that only writes)
// on a fresh API server: the in-memory one, or with --api-server=real a real kube-apiserver and
// etcd (bench/real-server.ts). Writes bench/results/<date>-operator-bound[-real].json.
import { spawn } from "node:child_process";
import { loadavg, tmpdir } from "node:os";
import { mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startKubeApiServer } from "../test/kube/server.ts";
import { CloudInstanceResource } from "../src/kube/resources.ts";
import type { KubeClient } from "../src/kube/client.ts";
import type { M2sSimulator } from "../test/sim/m2s/index.ts";
import { buildDist } from "../test/deploy/image.ts";
import { cpuSet, type Cgroup } from "./cgroup.ts";
import {
  args,
  CONTROLLER_RUNTIME_DEFAULTS,
  forEachLimited,
  machineInfo,
  NODE_ARGS,
  OURS,
  PRODUCTION_ENV,
  providerCalls,
  quantiles,
  reapOnExit,
  round,
  say,
  type Scenario,
  scrape,
  sleep,
  startOperator,
  sum,
  until,
  writes,
} from "./common.ts";
import {
  APPLY_CONCURRENCY,
  instance,
  isReady,
  NAMESPACE,
  operatorFlags,
  RESYNC,
  SIM,
  startAccountsWorld,
} from "./accounts.ts";
import { startRealAccountsWorld, startRealServer } from "./real-server.ts";

const root = join(import.meta.dirname, "..");
if (args.get("help") === "true") {
  process.stdout.write(`node bench/run.ts --scenario=operator-bound [options]
  --n=10000            CloudInstances, applied at once
  --accounts=100       credentials Secrets (API keys), instances spread evenly
  --baseline=true      also run controller-runtime's defaults (1 worker, 10 qps bucket); false: ours only
  --baseline-n=1000    the baseline's CloudInstances (accounts scaled alike): one worker needs
                       about an hour for 10,000 on a shared 2-core machine
  --workers=N          ours with --max-concurrent-reconciles=N as well (a tuned row)
  --transition-ms=500  the simulator's provisioning/deleting time
  --sim-qps=1000       the simulator's rate limit per account (the operator runs 5 under it)
  --log-level=info     the operator's log level (its default)
  --api-server=memory  memory: the in-memory API server, in this process (fast, cheap per write);
                       real: a real kube-apiserver and etcd (KUBEBUILDER_ASSETS, else built by
                       scripts/envtest/assets.sh), each run and each ideal on a fresh one, all
                       writes as the operator's ServiceAccount under the chart's RBAC
  --pin                the operator (and the empty reconciler of the ideal) on CPU 1, this
                       process (API server, simulator, the bench's requests) on CPU 0: each
                       with a core of its own, as the static CPU manager policy gives a pod
                       (needs root and the cgroup v1 cpuset controller)
  --cpu-prof           the operator writes a V8 CPU profile into --out on exit
  --heap-snapshot      the operator writes a heap snapshot into --out once all are Ready
  --heap-prof          the operator writes a V8 sampling heap profile (what is allocated
                       where, over the whole run) into --out on exit
  --out=DIR            where the JSON result goes (default bench/results)
`);
  process.exit(0);
}

const N = Number(args.get("n") ?? 10_000);
const ACCOUNTS = Number(args.get("accounts") ?? 100);
const withBaseline = args.get("baseline") !== "false";
const BASELINE_N = Number(args.get("baseline-n") ?? 1000);
const tunedWorkers = args.get("workers");
const outDir = args.get("out") ?? join(root, "bench", "results");
const cpuProf = args.get("cpu-prof") === "true";
const heapSnapshot = args.get("heap-snapshot") === "true";
const heapProf = args.get("heap-prof") === "true";
const logLevel = args.get("log-level") ?? "info";
const pin = args.get("pin") === "true";
const apiServer = args.get("api-server") ?? "memory";
if (apiServer !== "memory" && apiServer !== "real") {
  process.stderr.write(`bench: --api-server=${apiServer}: memory or real\n`);
  process.exit(2);
}
const real = apiServer === "real";
if (real && pin) {
  process.stderr.write("bench: --pin puts the API server on CPU 0 with this process: in-memory only\n");
  process.exit(2);
}
/** --pin: where the operator (or the empty reconciler) runs; this process is on CPU 0. */
let operatorCpu: Cgroup | undefined;
const SCENARIOS: Scenario[] = [OURS, CONTROLLER_RUNTIME_DEFAULTS];

interface Yardstick {
  watchEvents: number;
  /** Watches the server ended that the empty reconciler resumed (a real server ends slow ones). */
  watchRestarts: number;
  applySeconds: number;
  deleteSeconds: number;
  /** The empty reconciler's own CPU-seconds: what the same writes cost a client that does nothing else. */
  applyCpuSeconds: number;
  deleteCpuSeconds: number;
  writes: { apply: number; delete: number };
  writesPerSecond: number;
}

/** The empty reconciler's run on a fresh API server (see bench/empty-reconciler.ts). */
async function yardstick(n: number): Promise<Yardstick> {
  say(`== empty reconciler N=${String(n)} (${apiServer} API server)`);
  const dir = mkdtempSync(join(tmpdir(), "cio-bench-empty-"));
  let kubeconfig = join(dir, "kubeconfig");
  let closeServer: () => Promise<void>;
  if (real) {
    const server = await startRealServer();
    kubeconfig = server.kubeconfig;
    closeServer = () => server.close();
  } else {
    const api = await startKubeApiServer({ historyLimit: Math.max(10_000, n * 8) });
    api.writeKubeconfig(kubeconfig);
    closeServer = () => api.close();
  }
  try {
    const template = join(dir, "instance.json");
    writeFileSync(template, JSON.stringify(instance("x", 0, "http://127.0.0.1:1/v1")));
    const child = spawn(
      process.execPath,
      [
        join(import.meta.dirname, "empty-reconciler.ts"),
        kubeconfig,
        NAMESPACE,
        String(n),
        String(APPLY_CONCURRENCY),
        template,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    reapOnExit(child);
    if (child.pid !== undefined) operatorCpu?.add(child.pid);
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    if (code !== 0) throw new Error(`bench: empty reconciler exited ${String(code)}`);
    const result = JSON.parse(out) as Yardstick;
    say(JSON.stringify(result));
    return result;
  } finally {
    await closeServer();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a run needs of its world, on either API server. */
interface Stage {
  sim: M2sSimulator;
  /** The bench's own deletes. */
  kube: KubeClient;
  kubeconfig: string;
  /** Scratch: the operator's log. */
  dir: string;
  names: string[];
  apply(): Promise<void>;
  writes(): Promise<{ objects: number; events: number }>;
  /** CPU-seconds of an API server in processes of its own (0 for the in-memory one: it is this process). */
  serverCpuSeconds(): number;
  /** Waits until all `n` are Ready (or none is left); resolves with the moment (performance.now()) that was first seen. */
  allReady(n: number, operatorPort: number): Promise<number>;
  noneLeft(operatorPort: number): Promise<number>;
  close(): Promise<void>;
}

async function memoryStage(n: number, accounts: number): Promise<Stage> {
  const world = await startAccountsWorld(n, accounts, "cio-bench-ob-");
  const seen = async (what: string, pred: () => boolean): Promise<number> => {
    await until(what, pred, 3_600_000);
    return performance.now();
  };
  return {
    ...world,
    writes: () => Promise.resolve(writes(world.api)),
    serverCpuSeconds: () => 0,
    allReady: (count) =>
      seen("all Ready", () => {
        const all = world.instances();
        return all.length === count && all.every(isReady);
      }),
    noneLeft: () => seen("all deleted", () => world.instances().length === 0),
  };
}

/**
 * On a real server a list of every object costs the server as much as a few hundred writes, so
 * it is not polled: the operator's fleet gauge (`cloud_instances`, from its cache) says when to
 * look, twice a second, and one paginated list confirms what the server holds. The moment
 * reported is the scrape's (up to 0.5 s late, against a run of a minute or more).
 */
async function realStage(n: number, accounts: number): Promise<Stage> {
  const world = await startRealAccountsWorld(n, accounts);
  const dir = mkdtempSync(join(tmpdir(), "cio-bench-ob-real-"));
  const seen = async (
    what: string,
    port: number,
    hinted: (s: Awaited<ReturnType<typeof scrape>>) => boolean,
    confirmed: (c: { all: number; ready: number }) => boolean,
  ): Promise<number> => {
    const start = performance.now();
    for (;;) {
      const at = performance.now();
      if (hinted(await scrape(port)) && confirmed(await world.count())) return at;
      if (at - start > 3_600_000) throw new Error(`bench: timed out waiting for ${what}`);
      await sleep(500);
    }
  };
  return {
    ...world,
    kubeconfig: world.server.kubeconfig,
    dir,
    writes: () => world.server.writes(),
    serverCpuSeconds: () => world.server.cpuSeconds(),
    allReady: (count, port) =>
      seen(
        "all Ready",
        port,
        (s) => sum(s, "cloud_instances", { phase: "Running" }) >= count,
        (c) => c.all === count && c.ready === count,
      ),
    noneLeft: (port) =>
      seen(
        "all deleted",
        port,
        (s) => sum(s, "cloud_instances") === 0,
        (c) => c.all === 0,
      ),
  };
}

interface RunResult {
  scenario: string;
  n: number;
  accounts: number;
  convergence: { readySeconds: number; idealSeconds: number; ratio: number };
  deletion: { goneSeconds: number; idealSeconds: number; ratio: number; providerCallsPerInstance: number };
  economy: {
    providerCallsPerInstanceToReady: number;
    kubeObjectWritesPerInstanceToReady: number;
    eventsPerInstanceToReady: number;
    kubeObjectWritesPerInstanceToGone: number;
  };
  cpu: {
    secondsPer1000Reconciles: number;
    msPerReconcile: number;
    reconciles: number;
    reconcilesPerInstance: number;
    cpuSeconds: number;
    /** CPU-seconds per wall second while applying and deleting: 1 is one core's worth. */
    coresBusy: number;
    /**
     * The same for the API server, the simulator and the bench's own requests: this process,
     * plus etcd and kube-apiserver on a real server.
     */
    apiServerAndSimulatorCoresBusy: number;
    /**
     * Each phase on its own. `perInstanceVsEmpty`: the operator's CPU per instance over the
     * empty reconciler's for the same writes (1 would be a client doing nothing else).
     */
    apply: PhaseCpu;
    delete: PhaseCpu;
  };
  latency: { apply: { p50ms: number; p99ms: number }; delete: { p50ms: number; p99ms: number } };
  memory: { peakRssMB: number; heapUsedAfterReadyMB: number };
  /**
   * The machine's 1-minute load average before applying and after deleting: above the core
   * count, every process here waits for a core and the wall-clock ratios say so.
   */
  loadAverage: { before: number; after: number };
}

interface PhaseCpu {
  cpuSeconds: number;
  reconciles: number;
  msPerReconcile: number;
  coresBusy: number;
  perInstanceVsEmpty: number;
}

/** CPU ms per reconcile, to 0.01 ms. */
const msPerReconcile = (cpuSeconds: number, reconciles: number): number =>
  Math.round((cpuSeconds / Math.max(1, reconciles)) * 1e5) / 100;

function phaseCpu(
  cpuSeconds: number,
  reconciles: number,
  seconds: number,
  emptyCpuSeconds: number,
): PhaseCpu {
  return {
    cpuSeconds: round(cpuSeconds),
    reconciles,
    msPerReconcile: msPerReconcile(cpuSeconds, reconciles),
    coresBusy: round(cpuSeconds / seconds),
    perInstanceVsEmpty: round(cpuSeconds / Math.max(1e-9, emptyCpuSeconds)),
  };
}

/** Peak resident size of a process so far (the kernel's high-water mark), in MB. */
function peakRssMB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, "utf8"));
  return m ? round(Number(m[1]) / 1024) : 0;
}

async function run(
  scenario: Scenario,
  entry: string,
  ideal: Yardstick,
  N: number,
  ACCOUNTS: number,
): Promise<RunResult> {
  say(`== operator-bound ${scenario.id} N=${String(N)} accounts=${String(ACCOUNTS)}`);
  const world = real ? await realStage(N, ACCOUNTS) : await memoryStage(N, ACCOUNTS);
  const { sim, kube, kubeconfig, dir } = world;
  const profDir = join(outDir, `cpu-prof-${scenario.id}`);
  if (cpuProf) mkdirSync(profDir, { recursive: true });
  const heapProfDir = join(outDir, `heap-prof-${scenario.id}`);
  if (heapProf) mkdirSync(heapProfDir, { recursive: true });
  // Logs go to a file: piping them into this process would tax the API server living here.
  const logFile = join(dir, "operator.log");
  say(`operator log: ${logFile}`);
  const operator = await startOperator({
    entry,
    kubeconfig,
    stdout: openSync(logFile, "w"),
    flags: [...operatorFlags(logLevel), ...scenario.flags],
    extraNodeArgs: [
      ...(cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []),
      ...(heapSnapshot ? ["--heapsnapshot-signal=SIGUSR2"] : []),
      ...(heapProf ? ["--heap-prof", `--heap-prof-dir=${heapProfDir}`] : []),
    ],
    ...(heapSnapshot ? { cwd: outDir } : {}),
    ...(operatorCpu ? { onSpawn: (p: number) => operatorCpu?.add(p) } : {}),
  });
  const pid = operator.child.pid ?? 0;
  try {
    const { names } = world;

    const load0 = loadavg()[0] ?? 0;
    const m0 = await scrape(operator.port);
    const w0 = await world.writes();
    const p0 = providerCalls(sim);
    const c0 = process.cpuUsage();
    const s0 = world.serverCpuSeconds();
    const started = performance.now();
    await world.apply();
    const readySeconds = ((await world.allReady(N, operator.port)) - started) / 1000;
    const c1 = process.cpuUsage(c0);
    const s1 = world.serverCpuSeconds();
    const m1 = await scrape(operator.port);
    const w1 = await world.writes();
    const p1 = providerCalls(sim);
    if (heapSnapshot) {
      operator.child.kill("SIGUSR2");
      await sleep(Math.max(10_000, N * 3));
    }

    await sleep(1_000);
    const m1b = await scrape(operator.port);
    const w1b = await world.writes();
    const pd0 = providerCalls(sim);
    const c2 = process.cpuUsage();
    const s2 = world.serverCpuSeconds();
    const deleteStart = performance.now();
    await forEachLimited(names, APPLY_CONCURRENCY, async (name) => {
      await kube.delete(CloudInstanceResource, NAMESPACE, name);
    });
    const goneSeconds = ((await world.noneLeft(operator.port)) - deleteStart) / 1000;
    const c3 = process.cpuUsage(c2);
    const s3 = world.serverCpuSeconds();
    const m2 = await scrape(operator.port);
    const w2 = await world.writes();
    const pd1 = providerCalls(sim);
    const peak = peakRssMB(pid);

    const delta = (a: typeof m0, b: typeof m0, name: string): number => sum(b, name) - sum(a, name);
    const applyReconciles = delta(m0, m1, "controller_runtime_reconcile_total");
    const deleteReconciles = delta(m1b, m2, "controller_runtime_reconcile_total");
    const applyCpu = delta(m0, m1, "process_cpu_seconds_total");
    const deleteCpu = delta(m1b, m2, "process_cpu_seconds_total");
    const reconciles = applyReconciles + deleteReconciles;
    const cpuSeconds = applyCpu + deleteCpu;
    const readyIdeal = SIM.transitionMs / 1000 + ideal.applySeconds;
    const goneIdeal = SIM.transitionMs / 1000 + ideal.deleteSeconds;
    const q = "workqueue_queue_duration_seconds";
    const result: RunResult = {
      scenario: scenario.id,
      n: N,
      accounts: ACCOUNTS,
      convergence: {
        readySeconds: round(readySeconds),
        idealSeconds: round(readyIdeal),
        ratio: round(readySeconds / readyIdeal),
      },
      deletion: {
        goneSeconds: round(goneSeconds),
        idealSeconds: round(goneIdeal),
        ratio: round(goneSeconds / goneIdeal),
        providerCallsPerInstance: round((pd1 - pd0) / N),
      },
      economy: {
        providerCallsPerInstanceToReady: round((p1 - p0) / N),
        // The bench's own creates and deletes are not the operator's.
        kubeObjectWritesPerInstanceToReady: round((w1.objects - w0.objects - N) / N),
        eventsPerInstanceToReady: round((w1.events - w0.events) / N),
        kubeObjectWritesPerInstanceToGone: round((w2.objects - w1b.objects - N) / N),
      },
      cpu: {
        secondsPer1000Reconciles: round((cpuSeconds / Math.max(1, reconciles)) * 1000),
        msPerReconcile: msPerReconcile(cpuSeconds, reconciles),
        reconciles,
        reconcilesPerInstance: round(reconciles / N),
        cpuSeconds: round(cpuSeconds),
        coresBusy: round(cpuSeconds / (readySeconds + goneSeconds)),
        apiServerAndSimulatorCoresBusy: round(
          ((c1.user + c1.system + c3.user + c3.system) / 1e6 + (s1 - s0) + (s3 - s2)) /
            (readySeconds + goneSeconds),
        ),
        apply: phaseCpu(applyCpu, applyReconciles, readySeconds, ideal.applyCpuSeconds),
        delete: phaseCpu(deleteCpu, deleteReconciles, goneSeconds, ideal.deleteCpuSeconds),
      },
      latency: { apply: quantiles(m0, m1, q), delete: quantiles(m1b, m2, q) },
      loadAverage: { before: round(load0), after: round(loadavg()[0] ?? 0) },
      memory: {
        peakRssMB: peak,
        heapUsedAfterReadyMB: round(sum(m1, "nodejs_heap_size_used_bytes") / 2 ** 20),
      },
    };
    say(JSON.stringify(result));
    return result;
  } finally {
    await operator.stop();
    await world.close();
  }
}

function table(results: RunResult[]): string {
  const title = (id: string): string =>
    SCENARIOS.find((s) => s.id === id)?.title ??
    (id.startsWith("ours-workers-")
      ? `this operator, --max-concurrent-reconciles=${id.slice("ours-workers-".length)}`
      : id);
  const head =
    "| scenario | N | accounts | to Ready (s) | ideal (s) | ratio | deleted (s) | ideal (s) | ratio | CPU ms/reconcile | apply: cores busy, CPU × empty's | reconciles/inst | provider calls/inst | kube writes/inst (ready / gone) | events/inst | queue p50/p99 ms (apply) | (delete) | peak RSS MB |";
  const sep = `|${"---|".repeat(18)}`;
  const rows = results.map((r) =>
    [
      title(r.scenario),
      r.n,
      r.accounts,
      r.convergence.readySeconds,
      r.convergence.idealSeconds,
      `${String(r.convergence.ratio)}×`,
      r.deletion.goneSeconds,
      r.deletion.idealSeconds,
      `${String(r.deletion.ratio)}×`,
      r.cpu.msPerReconcile,
      `${String(r.cpu.apply.coresBusy)}, ${String(r.cpu.apply.perInstanceVsEmpty)}×`,
      r.cpu.reconcilesPerInstance,
      r.economy.providerCallsPerInstanceToReady,
      `${String(r.economy.kubeObjectWritesPerInstanceToReady)} / ${String(r.economy.kubeObjectWritesPerInstanceToGone)}`,
      r.economy.eventsPerInstanceToReady,
      `${String(r.latency.apply.p50ms)} / ${String(r.latency.apply.p99ms)}`,
      `${String(r.latency.delete.p50ms)} / ${String(r.latency.delete.p99ms)}`,
      r.memory.peakRssMB,
    ].join(" | "),
  );
  return [head, sep, ...rows.map((r) => `| ${r} |`)].join("\n");
}

export async function main(): Promise<void> {
  const dist = buildDist("bench-dist-");
  const benchCpu = pin ? cpuSet("api", "0") : undefined;
  benchCpu?.add(process.pid);
  operatorCpu = pin ? cpuSet("operator", "1") : undefined;
  const results: RunResult[] = [];
  const ideals: Yardstick[] = [];
  const plan: { scenario: Scenario; n: number; accounts: number }[] = [
    { scenario: SCENARIOS[0] as Scenario, n: N, accounts: ACCOUNTS },
  ];
  if (tunedWorkers !== undefined)
    plan.push({
      scenario: {
        id: `ours-workers-${tunedWorkers}`,
        title: `this operator, --max-concurrent-reconciles=${tunedWorkers}`,
        flags: [`--max-concurrent-reconciles=${tunedWorkers}`],
      },
      n: N,
      accounts: ACCOUNTS,
    });
  if (withBaseline)
    plan.push({
      scenario: SCENARIOS[1] as Scenario,
      n: BASELINE_N,
      accounts: Math.max(1, Math.round((ACCOUNTS * BASELINE_N) / N)),
    });
  try {
    // The yardstick right before each run: on a shared machine the server's speed drifts.
    for (const { scenario, n, accounts } of plan) {
      const ideal = await yardstick(n);
      ideals.push(ideal);
      results.push(await run(scenario, join(dist.dir, "main.js"), ideal, n, accounts));
    }
  } finally {
    dist.remove();
    operatorCpu?.remove();
    benchCpu?.remove();
  }
  const report = {
    date: new Date().toISOString(),
    scenario: "operator-bound",
    apiServer: real
      ? "kube-apiserver and etcd (KUBEBUILDER_ASSETS), TLS, RBAC; every write as the operator's ServiceAccount"
      : "in-memory (test/kube/server.ts), in the bench's process",
    pinned: pin ? { operatorAndEmptyReconciler: "CPU 1", apiServerSimulatorBench: "CPU 0" } : null,
    machine: machineInfo(),
    simulator: { provider: "m2s", accounts: ACCOUNTS, ...SIM },
    operator: {
      logLevel,
      flags: `--kube-api-qps=0 --provider-qps=${String(SIM.rateLimitQps - 5)} --provider-burst=50 --resync-period=${RESYNC}`,
    },
    runtime: {
      entry: "dist/main.js (tsc -p tsconfig.build.json, as the image)",
      nodeArgs: NODE_ARGS.join(" "),
      ...PRODUCTION_ENV,
    },
    /** One run of the empty reconciler before each scenario, in the order of results. */
    emptyReconciler: ideals.map((ideal) => ({
      ...ideal,
      applySeconds: round(ideal.applySeconds),
      deleteSeconds: round(ideal.deleteSeconds),
      applyCpuSeconds: round(ideal.applyCpuSeconds),
      deleteCpuSeconds: round(ideal.deleteCpuSeconds),
      writesPerSecond: Math.round(ideal.writesPerSecond),
    })),
    idealFormula:
      "to Ready: transition + the empty reconciler's apply (create, finalizer, 2 status writes, 1 Event per instance); deleted: transition + its delete (delete, finalizer removal)",
    cpuProfiles: cpuProf ? readdirSync(outDir).filter((f) => f.startsWith("cpu-prof-")) : [],
    heapProfiles: heapProf ? readdirSync(outDir).filter((f) => f.startsWith("heap-prof-")) : [],
    results,
  };
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${report.date.slice(0, 10)}-operator-bound${real ? "-real" : ""}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${table(results)}\n\nresults: ${file}\n`);
}
