// `npm run bench -- --scenario=replicas`: throughput against the replica count and the shard
// handover after a SIGKILL (issue #26). The operator-bound world (many accounts on a fast m2s
// simulator, bench/accounts.ts) with N CloudInstances applied at once, reconciled by 1 and then
// by 3 operator processes running `--leader-elect --shards=S` (distinct --pod-name, metrics
// and probe ports), each on a fresh API server. Reconciles per second are
// controller_runtime_reconcile_total summed over the replicas from the first create to all
// Ready, divided by that time. In the multi-replica run one replica is then SIGKILLed in steady
// state: the handover is the time until every shard it held has another holder (read from the
// Leases on the API server) and until one object per such shard, touched right after the kill
// (reconcile-requested-at), shows it handled. Writes bench/results/<date>-replicas.json.
import { loadavg } from "node:os";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CloudInstanceResource, LeaseResource } from "../src/kube/resources.ts";
import { microTime } from "../src/controller/runtime/leader-election.ts";
import { ANNOTATION_RECONCILE_REQUESTED_AT } from "../src/api/index.ts";
import { shardOf, shardOfLeaseName } from "../src/controller/runtime/sharding.ts";
import { shardLabelKey } from "../src/controller/runtime/shard-watch.ts";
import { buildDist } from "../test/deploy/image.ts";
import { cpuLimit, type CpuLimit } from "./cgroup.ts";
import type { Samples } from "./prometheus.ts";
import type { KubeApiServer } from "../test/kube/server.ts";
import {
  args,
  forEachLimited,
  machineInfo,
  procCpuSeconds,
  providerCalls,
  reapOnExit,
  NODE_ARGS,
  PRODUCTION_ENV,
  round,
  say,
  scrape,
  sleep,
  startOperator,
  sum,
  type OperatorProcess,
  until,
} from "./common.ts";
import {
  allReady,
  APPLY_CONCURRENCY,
  NAMESPACE,
  operatorFlags,
  SIM,
  startAccountsWorld,
  type AccountsWorld,
} from "./accounts.ts";

const root = join(import.meta.dirname, "..");
if (args.get("help") === "true") {
  process.stdout.write(`node bench/run.ts --scenario=replicas [options]
  --n=3000             CloudInstances, applied at once (64 creates in flight)
  --accounts=100       credentials Secrets (API keys), instances spread evenly
  --replicas=1,3       one run per replica count, each on a fresh API server and simulator
  --shards=12          --shards of every replica (all runs use --leader-elect)
  --shard-watch=all    --shard-watch of every replica: all (each watches every object) or
                       labels (each watches only the shards it holds)
  --kill=true          in runs with more than one replica, SIGKILL one in steady state and
                       measure the handover (false: throughput only)
  --lease-duration=15s --leader-election-lease-duration (renew deadline 2/3, retry period 2/15
                       of it: the production defaults are 15 s / 10 s / 2 s)
  --transition-ms=500  the simulator's provisioning/deleting time
  --sim-qps=1000       the simulator's rate limit per account (the operator runs 5 under it)
  --log-level=info     the operators' log level (their default); logs go to files
  --observer           also run one operator that only watches: a hot standby (--leader-elect,
                       one shard) of a Lease the bench holds; its CPU is what watching and
                       caching every object costs a replica that reconciles nothing. With
                       --shard-watch=labels it watches what one of the replicas does: the
                       objects of S/replicas shards (--watch-label-selector on the shard label)
  --cpu-limit=CORES    give every replica (and the observers) the same CPU limit, as a pod's
                       resources.limits.cpu: a CFS quota on a cgroup of its own (needs root
                       and the cgroup v1 cpu controller). Then the replica count, not the
                       cores the machine has left, decides the throughput: 3 × 0.3 plus the
                       API server fit in 2 cores. Default: no limit
  --warmup=W           before the measured apply, W CloudInstances per replica are applied,
                       reconciled to Ready and deleted, so that every replica's reconcile
                       path is compiled (V8 optimises hot code after it ran a while): the
                       figures are then a long-running replica's, not a fresh process's.
                       Default 0 (cold: the first reconciles of each process are measured)
  --neighbours=K       a control: K more processes that only burn CPU (bench/neighbour.ts),
                       each under the same --cpu-limit, run beside the replicas during the
                       measured apply. One replica with 2 neighbours shares the machine as
                       one of three replicas does, without their work: what it spends per
                       reconcile beyond running alone is the machine's, not the code's.
                       Needs --cpu-limit. Default 0
  --cpu-prof           every replica writes a V8 CPU profile into --out/cpu-prof-replicas-<count>
  --out=DIR            where the JSON result goes (default bench/results)
`);
  process.exit(0);
}

const N = Number(args.get("n") ?? 3000);
const ACCOUNTS = Number(args.get("accounts") ?? 100);
const REPLICAS = (args.get("replicas") ?? "1,3").split(",").map(Number);
const SHARDS = Number(args.get("shards") ?? 12);
const SHARD_WATCH = args.get("shard-watch") ?? "all";
if (SHARD_WATCH !== "all" && SHARD_WATCH !== "labels")
  throw new Error(`bench: bad --shard-watch ${SHARD_WATCH}`);
const KILL = args.get("kill") !== "false";
const LEASE_MS = parseDuration(args.get("lease-duration") ?? "15s");
const logLevel = args.get("log-level") ?? "info";
const outDir = args.get("out") ?? join(root, "bench", "results");
const cpuProf = args.get("cpu-prof") === "true";
const withObserver = args.get("observer") === "true";
const CPU_LIMIT = args.has("cpu-limit") ? Number(args.get("cpu-limit")) : undefined;
const WARMUP = Number(args.get("warmup") ?? 0);
const NEIGHBOURS = Number(args.get("neighbours") ?? 0);
if (NEIGHBOURS > 0 && CPU_LIMIT === undefined) throw new Error("bench: --neighbours needs --cpu-limit");
const OBSERVER_LEASE = "bench-replicas-observer";
const LEASE_ID = "bench-replicas";

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(s);
  if (!m) throw new Error(`bench: bad duration ${s}`);
  return Number(m[1]) * (m[2] === "s" ? 1000 : 1);
}
const LEASE = {
  durationMs: LEASE_MS,
  renewDeadlineMs: Math.round((LEASE_MS * 2) / 3),
  retryPeriodMs: Math.round(LEASE_MS / 7.5),
};

interface Replica {
  name: string;
  op: OperatorProcess;
  logFile: string;
  limit: CpuLimit | undefined;
}

interface ReplicaFigures {
  name: string;
  reconciles: number;
  cpuSeconds: number;
  /** CPU-seconds per wall second from the first create to all Ready: 1 is one core's worth. */
  coresBusy: number;
  msPerReconcile: number;
  /** Keys added to its work queue (events that passed the predicates, requeues, shard enqueues). */
  workqueueAdds: number;
  shardsHeld: number;
  peakRssMB: number;
  /** --cpu-limit: seconds the replica waited with its quota spent, over the measured apply. */
  throttledSeconds?: number;
}

interface Handover {
  victim: string;
  shardsOfVictim: number[];
  leaseDurationMs: number;
  /** Per shard of the victim: seconds from the SIGKILL until the API server shows another holder. */
  shardTakenSeconds: Record<string, number>;
  /** The last of them: every shard of the victim held again. */
  allShardsTakenSeconds: number;
  /** Per shard of the victim: one object touched right after the kill, seconds until handled. */
  objectReconciledSeconds: Record<string, number>;
  allObjectsReconciledSeconds: number;
  /** The same touch on one object of a surviving replica's shard (no handover involved). */
  controlObjectReconciledSeconds: number;
  /** Reconciles the survivors ran from the kill until every touched object was handled. */
  survivorReconciles: number;
  heldAfter: Record<string, number>;
}

interface RunResult {
  replicas: number;
  shards: number;
  n: number;
  accounts: number;
  /** From starting the replicas until the Leases show a fair split. */
  balancedSeconds: number;
  readySeconds: number;
  reconciles: number;
  reconcilesPerSecond: number;
  reconcilesPerInstance: number;
  perReplica: ReplicaFigures[];
  /** Sum over the replicas. */
  operatorCoresBusy: number;
  /** This process: the in-memory API server, the simulator and the bench's own creates. */
  apiServerAndSimulatorCoresBusy: number;
  loadAverage: { before: number; after: number };
  /** API requests per instance over the apply, by verb and resource, every client together (the bench's creates included). */
  kubeRequestsPerInstance: Record<string, number>;
  providerCallsPerInstance: number;
  /** --observer: the watch-only standby's CPU over the same apply (labels: one replica's share of shards). */
  observer?: {
    cpuSeconds: number;
    coresBusy: number;
    reconciles: number;
    peakRssMB: number;
    watchLabelSelector?: string;
  };
  /** --observer with --shard-watch=labels: a second standby in the same run, watching every object. */
  observerAll?: { cpuSeconds: number; coresBusy: number; reconciles: number; peakRssMB: number };
  /** --neighbours: how many CPU burners ran beside the replicas, and the cores they used. */
  neighbours?: { count: number; coresBusy: number };
  handover?: Handover;
}

interface Neighbour {
  child: ChildProcess;
  limit: CpuLimit;
}

/** --neighbours: K CPU burners, each in its own cgroup under the replicas' limit. */
function startNeighbours(count: number, cores: number): Neighbour[] {
  return Array.from({ length: count }, (_, i) => {
    const limit = cpuLimit(`neighbour-${String(i)}`, cores);
    const child = spawn(process.execPath, [join(import.meta.dirname, "neighbour.ts")], { stdio: "ignore" });
    reapOnExit(child);
    if (child.pid !== undefined) limit.add(child.pid);
    return { child, limit };
  });
}

async function stopNeighbours(neighbours: Neighbour[]): Promise<void> {
  await Promise.all(
    neighbours.map(async ({ child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }),
  );
  for (const { limit } of neighbours) limit.remove();
}

/** Shard index -> holder, as the API server stores the Leases ("" when nobody). */
function holders(api: KubeApiServer): string[] {
  const h = Array.from({ length: SHARDS }, () => "");
  for (const l of api.objects("leases")) {
    if (l.metadata.namespace !== NAMESPACE) continue;
    const i = shardOfLeaseName(LEASE_ID, l.metadata.name ?? "", SHARDS);
    if (i === undefined) continue;
    h[i] = (l as unknown as { spec?: { holderIdentity?: string } }).spec?.holderIdentity ?? "";
  }
  return h;
}
function balanced(api: KubeApiServer, names: string[]): boolean {
  const h = holders(api);
  if (h.some((x) => !names.includes(x))) return false;
  const lo = Math.floor(SHARDS / names.length);
  const hi = Math.ceil(SHARDS / names.length);
  return names.every((n) => {
    const c = h.filter((x) => x === n).length;
    return c >= lo && c <= hi;
  });
}
function peakRssMB(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, "utf8"));
    return m ? round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}
const RECONCILES = "controller_runtime_reconcile_total";
const CPU = "process_cpu_seconds_total";

async function startReplicas(world: AccountsWorld, entry: string, count: number): Promise<Replica[]> {
  const replicas: Replica[] = [];
  for (let i = 0; i < count; i++) {
    const name = `replica-${String(i)}`;
    const logFile = join(world.dir, `${name}.log`);
    const limit = CPU_LIMIT === undefined ? undefined : cpuLimit(name, CPU_LIMIT);
    const op = await startOperator({
      ...(limit ? { onSpawn: (pid: number) => limit.add(pid) } : {}),
      entry,
      kubeconfig: world.kubeconfig,
      stdout: openSync(logFile, "w"),
      flags: [
        ...operatorFlags(logLevel),
        "--leader-elect",
        `--leader-election-id=${LEASE_ID}`,
        `--leader-election-namespace=${NAMESPACE}`,
        `--leader-election-lease-duration=${String(LEASE.durationMs)}ms`,
        `--leader-election-renew-deadline=${String(LEASE.renewDeadlineMs)}ms`,
        `--leader-election-retry-period=${String(LEASE.retryPeriodMs)}ms`,
        `--shards=${String(SHARDS)}`,
        `--shard-watch=${SHARD_WATCH}`,
        `--pod-name=${name}`,
      ],
      ...(cpuProf
        ? {
            extraNodeArgs: [
              "--cpu-prof",
              `--cpu-prof-dir=${join(outDir, `cpu-prof-replicas-${String(count)}`)}`,
            ],
          }
        : {}),
    });
    replicas.push({ name, op, logFile, limit });
  }
  return replicas;
}

async function handover(world: AccountsWorld, replicas: Replica[]): Promise<Handover> {
  const { api, kube } = world;
  const victim = replicas[replicas.length - 1] as Replica;
  const survivors = replicas.filter((r) => r !== victim);
  const before = holders(api);
  const shardsOfVictim = before.flatMap((h, i) => (h === victim.name ? [i] : []));
  // One object per shard of the victim, and one of a survivor's shard as the control.
  const byShard = new Map<number, string>();
  for (const o of world.instances()) {
    const s = shardOf(o.metadata.uid ?? "", SHARDS);
    if (!byShard.has(s)) byShard.set(s, o.metadata.name ?? "");
  }
  const probes = shardsOfVictim.map((s) => ({ shard: s, name: byShard.get(s) ?? "" }));
  const controlShard = before.findIndex((h) => h !== victim.name);
  const control = { shard: controlShard, name: byShard.get(controlShard) ?? "" };
  const m0 = await Promise.all(survivors.map((r) => scrape(r.op.port)));
  say(`== SIGKILL ${victim.name} (shards ${shardsOfVictim.join(",")})`);
  const stamp = `handover-${String(Date.now())}`;
  const killedAt = performance.now();
  victim.op.child.kill("SIGKILL");
  await Promise.all(
    [...probes, control].map((p) =>
      kube.patch(CloudInstanceResource, NAMESPACE, p.name, {
        metadata: { annotations: { [ANNOTATION_RECONCILE_REQUESTED_AT]: stamp } },
      }),
    ),
  );
  const taken: Record<string, number> = {};
  const reconciled: Record<string, number> = {};
  let controlSeconds = -1;
  const handled = (name: string): boolean =>
    world.instances().find((o) => o.metadata.name === name)?.status?.lastHandledReconcileAt === stamp;
  const deadline = killedAt + LEASE.durationMs * 4 + 60_000;
  while (
    Object.keys(taken).length < probes.length ||
    Object.keys(reconciled).length < probes.length ||
    controlSeconds < 0
  ) {
    if (performance.now() > deadline)
      throw new Error(
        `bench: handover not complete: holders ${JSON.stringify(holders(api))}, reconciled ${JSON.stringify(reconciled)}`,
      );
    const t = (performance.now() - killedAt) / 1000;
    const h = holders(api);
    for (const p of probes) {
      const k = String(p.shard);
      const holder = h[p.shard] ?? "";
      if (taken[k] === undefined && holder !== "" && holder !== victim.name) taken[k] = round(t);
      if (reconciled[k] === undefined && handled(p.name)) reconciled[k] = round(t);
    }
    if (controlSeconds < 0 && handled(control.name)) controlSeconds = round(t);
    await sleep(20);
  }
  const m1 = await Promise.all(survivors.map((r) => scrape(r.op.port)));
  const after = holders(api);
  return {
    victim: victim.name,
    shardsOfVictim,
    leaseDurationMs: LEASE.durationMs,
    shardTakenSeconds: taken,
    allShardsTakenSeconds: Math.max(...Object.values(taken)),
    objectReconciledSeconds: reconciled,
    allObjectsReconciledSeconds: Math.max(...Object.values(reconciled)),
    controlObjectReconciledSeconds: controlSeconds,
    survivorReconciles: survivors.reduce(
      (a, _, i) => a + sum(m1[i] ?? [], RECONCILES) - sum(m0[i] ?? [], RECONCILES),
      0,
    ),
    heldAfter: Object.fromEntries(survivors.map((r) => [r.name, after.filter((x) => x === r.name).length])),
  };
}

/** The Lease the observers are standbys of, held and renewed by the bench so it never expires. */
async function holdObserverLease(world: AccountsWorld, stop: AbortSignal): Promise<void> {
  const spec = (): { holderIdentity: string; leaseDurationSeconds: number; renewTime: string } => ({
    holderIdentity: "bench",
    leaseDurationSeconds: LEASE.durationMs / 1000,
    renewTime: microTime(Date.now()),
  });
  let lease = await world.kube.create(LeaseResource, {
    metadata: { name: OBSERVER_LEASE, namespace: NAMESPACE },
    spec: spec(),
  });
  void (async () => {
    while (!stop.aborted) {
      await sleep(LEASE.retryPeriodMs / 2);
      if (stop.aborted) break;
      lease = await world.kube.update(LeaseResource, { ...lease, spec: spec() }).catch((err: unknown) => {
        if (stop.aborted) return lease;
        throw err;
      });
    }
  })();
}

/**
 * An operator that watches and caches (the objects `selector` selects, or every object) and
 * reconciles none: a standby of the bench's Lease.
 */
async function startObserver(
  world: AccountsWorld,
  entry: string,
  name: string,
  selector: string | undefined,
  limits: CpuLimit[],
): Promise<OperatorProcess> {
  const limit = CPU_LIMIT === undefined ? undefined : cpuLimit(name, CPU_LIMIT);
  if (limit) limits.push(limit);
  return startOperator({
    ...(limit ? { onSpawn: (pid: number) => limit.add(pid) } : {}),
    entry,
    kubeconfig: world.kubeconfig,
    stdout: openSync(join(world.dir, `${name}.log`), "w"),
    flags: [
      ...operatorFlags(logLevel),
      "--leader-elect",
      `--leader-election-id=${OBSERVER_LEASE}`,
      `--leader-election-namespace=${NAMESPACE}`,
      `--leader-election-lease-duration=${String(LEASE.durationMs)}ms`,
      `--leader-election-renew-deadline=${String(LEASE.renewDeadlineMs)}ms`,
      `--leader-election-retry-period=${String(LEASE.retryPeriodMs)}ms`,
      `--pod-name=${name}`,
      ...(selector === undefined ? [] : [`--watch-label-selector=${selector}`]),
    ],
  });
}

/**
 * --shard-watch=labels: what one of `count` replicas watches, the objects of S/count shards
 * (one `in` selector instead of a watch per shard, and no labeller watch: a little less).
 */
function observerSelector(count: number): string | undefined {
  if (SHARD_WATCH !== "labels") return undefined;
  const shards = Array.from({ length: Math.ceil(SHARDS / count) }, (_, i) => String(i));
  return `${shardLabelKey(SHARDS)} in (${shards.join(",")})`;
}

async function run(count: number, entry: string): Promise<RunResult> {
  say(`== replicas=${String(count)} shards=${String(SHARDS)} N=${String(N)} accounts=${String(ACCOUNTS)}`);
  const world = await startAccountsWorld(N, ACCOUNTS, "cio-bench-replicas-");
  let replicas: Replica[] = [];
  let observer: OperatorProcess | undefined;
  /** With a selector on `observer`: a second one watching every object, for a paired figure. */
  let observerAll: OperatorProcess | undefined;
  const observerLimits: CpuLimit[] = [];
  let neighbours: Neighbour[] = [];
  const renewing = new AbortController();
  try {
    const s0 = performance.now();
    replicas = await startReplicas(world, entry, count);
    const names = replicas.map((r) => r.name);
    await until("a fair split of the shards", () => balanced(world.api, names), 300_000);
    const balancedSeconds = (performance.now() - s0) / 1000;
    if (withObserver) {
      await holdObserverLease(world, renewing.signal);
      const selector = observerSelector(count);
      observer = await startObserver(world, entry, "observer", selector, observerLimits);
      // Side by side under the same load: what the same standby costs watching everything.
      if (selector !== undefined)
        observerAll = await startObserver(world, entry, "observer-all", undefined, observerLimits);
    }

    if (WARMUP > 0) await warmUp(world, WARMUP * count);
    if (NEIGHBOURS > 0 && CPU_LIMIT !== undefined) neighbours = startNeighbours(NEIGHBOURS, CPU_LIMIT);
    const n0 = neighbours.map((nb) => (nb.child.pid === undefined ? 0 : procCpuSeconds(nb.child.pid)));

    const load0 = loadavg()[0] ?? 0;
    const t0 = replicas.map((r) => r.limit?.throttled().throttledSeconds ?? 0);
    const m0 = await Promise.all(replicas.map((r) => scrape(r.op.port)));
    const o0 = observer ? await scrape(observer.port) : undefined;
    const a0 = observerAll ? await scrape(observerAll.port) : undefined;
    const c0 = process.cpuUsage();
    const k0 = world.api.requestCounts().byResource;
    const p0 = providerCalls(world.sim);
    const started = performance.now();
    await world.apply();
    await until("all Ready", allReady(world, N), 3_600_000);
    const readySeconds = (performance.now() - started) / 1000;
    const c1 = process.cpuUsage(c0);
    const k1 = world.api.requestCounts().byResource;
    const providerCallsPerInstance = round((providerCalls(world.sim) - p0) / N);
    const m1 = await Promise.all(replicas.map((r) => scrape(r.op.port)));
    const o1 = observer ? await scrape(observer.port) : undefined;
    const a1 = observerAll ? await scrape(observerAll.port) : undefined;
    const load1 = loadavg()[0] ?? 0;
    const neighbourCpu = neighbours.reduce(
      (a, nb, i) => a + (nb.child.pid === undefined ? 0 : procCpuSeconds(nb.child.pid) - (n0[i] ?? 0)),
      0,
    );
    await stopNeighbours(neighbours);
    const held = holders(world.api);
    const perReplica: ReplicaFigures[] = replicas.map((r, i) => {
      const reconciles = sum(m1[i] ?? [], RECONCILES) - sum(m0[i] ?? [], RECONCILES);
      const cpuSeconds = sum(m1[i] ?? [], CPU) - sum(m0[i] ?? [], CPU);
      return {
        name: r.name,
        reconciles,
        cpuSeconds: round(cpuSeconds),
        coresBusy: round(cpuSeconds / readySeconds),
        msPerReconcile: round((cpuSeconds / Math.max(1, reconciles)) * 1000),
        workqueueAdds: sum(m1[i] ?? [], "workqueue_adds_total") - sum(m0[i] ?? [], "workqueue_adds_total"),
        shardsHeld: held.filter((h) => h === r.name).length,
        peakRssMB: peakRssMB(r.op.child.pid),
        ...(r.limit ? { throttledSeconds: round(r.limit.throttled().throttledSeconds - (t0[i] ?? 0)) } : {}),
      };
    });
    const reconciles = perReplica.reduce((a, r) => a + r.reconciles, 0);
    const result: RunResult = {
      replicas: count,
      shards: SHARDS,
      n: N,
      accounts: ACCOUNTS,
      balancedSeconds: round(balancedSeconds),
      readySeconds: round(readySeconds),
      reconciles,
      reconcilesPerSecond: round(reconciles / readySeconds),
      reconcilesPerInstance: round(reconciles / N),
      perReplica,
      operatorCoresBusy: round(perReplica.reduce((a, r) => a + r.cpuSeconds, 0) / readySeconds),
      apiServerAndSimulatorCoresBusy: round((c1.user + c1.system) / 1e6 / readySeconds),
      loadAverage: { before: round(load0), after: round(load1) },
      ...(neighbours.length > 0
        ? { neighbours: { count: neighbours.length, coresBusy: round(neighbourCpu / readySeconds) } }
        : {}),
      providerCallsPerInstance,
      kubeRequestsPerInstance: Object.fromEntries(
        Object.entries(k1)
          .map(([k, v]) => [k, round((v - (k0[k] ?? 0)) / N)] as const)
          .filter(([, v]) => v > 0),
      ),
    };
    const selector = observerSelector(count);
    if (observer && o0 && o1)
      result.observer = {
        ...standbyFigures(observer, o0, o1, readySeconds),
        ...(selector === undefined ? {} : { watchLabelSelector: selector }),
      };
    if (observerAll && a0 && a1) result.observerAll = standbyFigures(observerAll, a0, a1, readySeconds);
    say(JSON.stringify(result));
    if (count > 1 && KILL) {
      // Steady state: nothing queued, every object Ready.
      await sleep(3_000);
      result.handover = await handover(world, replicas);
      say(JSON.stringify(result.handover));
    }
    return result;
  } finally {
    renewing.abort();
    await stopNeighbours(neighbours);
    await observer?.stop();
    await observerAll?.stop();
    // All at once: stopped one by one, the others would take the released shards and
    // reconcile their objects again (which a --cpu-prof profile would count).
    await Promise.all(
      replicas
        .filter((r) => r.op.child.exitCode === null && r.op.child.signalCode === null)
        .map((r) => r.op.stop()),
    );
    await world.close();
    for (const l of [...replicas.map((r) => r.limit), ...observerLimits]) l?.remove();
  }
}

/** A watch-only standby's figures over the measured apply, from its scrapes before and after. */
function standbyFigures(
  op: OperatorProcess,
  before: Samples,
  after: Samples,
  seconds: number,
): { cpuSeconds: number; coresBusy: number; reconciles: number; peakRssMB: number } {
  const cpuSeconds = sum(after, CPU) - sum(before, CPU);
  return {
    cpuSeconds: round(cpuSeconds),
    coresBusy: round(cpuSeconds / seconds),
    reconciles: sum(after, RECONCILES) - sum(before, RECONCILES),
    peakRssMB: peakRssMB(op.child.pid),
  };
}

/**
 * --warmup: `n` objects applied, reconciled to Ready and deleted before the measured apply, so
 * that each replica has run its create, observe and delete paths often enough for V8 to have
 * optimised them. Waits until they are gone and the replicas are quiet again.
 */
async function warmUp(world: AccountsWorld, n: number): Promise<void> {
  const names = Array.from({ length: n }, (_, i) => `warm-${String(i).padStart(5, "0")}`);
  const s0 = performance.now();
  await world.create(names);
  await until("the warm-up batch Ready", allReady(world, n), 3_600_000);
  await forEachLimited(names, APPLY_CONCURRENCY, async (name) => {
    await world.kube.delete(CloudInstanceResource, NAMESPACE, name);
  });
  await until("the warm-up batch gone", () => world.instances().length === 0, 3_600_000);
  await sleep(2_000);
  say(
    `warm-up: ${String(n)} objects created, Ready and deleted in ${String(round((performance.now() - s0) / 1000))} s`,
  );
}

function table(results: RunResult[]): string {
  const one = results.find((r) => r.replicas === 1);
  const head =
    "| replicas | shards | N | balanced (s) | to Ready (s) | reconciles/s | × one replica | cores busy per replica | operators' cores | API server + sim cores | load avg | handover: shards taken / object reconciled (s) |";
  const sep = `|${"---|".repeat(12)}`;
  const rows = results.map((r) =>
    [
      r.neighbours ? `${String(r.replicas)} (+${String(r.neighbours.count)} neighbours)` : r.replicas,
      r.shards,
      r.n,
      r.balancedSeconds,
      r.readySeconds,
      r.reconcilesPerSecond,
      one ? `${String(round(r.reconcilesPerSecond / one.reconcilesPerSecond))}×` : "",
      r.perReplica.map((p) => p.coresBusy).join(" / "),
      r.operatorCoresBusy,
      r.apiServerAndSimulatorCoresBusy,
      `${String(r.loadAverage.before)} → ${String(r.loadAverage.after)}`,
      r.handover
        ? `${String(r.handover.allShardsTakenSeconds)} / ${String(r.handover.allObjectsReconciledSeconds)} (lease ${String(r.handover.leaseDurationMs / 1000)} s)`
        : "",
    ].join(" | "),
  );
  return [head, sep, ...rows.map((r) => `| ${r} |`)].join("\n");
}

/**
 * With --observer on the one-replica and a multi-replica run: how much faster the replicas
 * could be if each had a core of its own, from CPU alone. One replica's CPU C1 is its watch W1
 * (the observer of the one-replica run) plus the rest, which splits over the n replicas; each
 * of them also pays its own watch Wn (the observer of that run): C1 / (Wn + (C1 − W1) / n).
 */
function cpuCeiling(results: RunResult[]): Record<string, number> | undefined {
  const one = results.find((r) => r.replicas === 1);
  const c1 = one?.perReplica[0]?.cpuSeconds;
  const w1 = one?.observer?.cpuSeconds;
  if (c1 === undefined || w1 === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const r of results) {
    if (r.replicas === 1 || r.observer === undefined) continue;
    out[String(r.replicas)] = round(c1 / (r.observer.cpuSeconds + (c1 - w1) / r.replicas));
  }
  return out;
}

export async function main(): Promise<void> {
  const dist = buildDist("bench-dist-");
  const results: RunResult[] = [];
  try {
    for (const count of REPLICAS) results.push(await run(count, join(dist.dir, "main.js")));
  } finally {
    dist.remove();
  }
  const one = results.find((r) => r.replicas === 1);
  const report = {
    date: new Date().toISOString(),
    scenario: "replicas",
    machine: machineInfo(),
    simulator: { provider: "m2s", accounts: ACCOUNTS, ...SIM },
    operator: {
      logLevel,
      flags: `${operatorFlags(logLevel)
        .filter((f) => !f.startsWith("--allowed-endpoints"))
        .join(" ")} --leader-elect --shards=${String(SHARDS)} --shard-watch=${SHARD_WATCH}`,
      lease: LEASE,
      cpuLimitPerReplica: CPU_LIMIT ?? null,
      warmupPerReplica: WARMUP,
    },
    runtime: {
      entry: "dist/main.js (tsc -p tsconfig.build.json, as the image)",
      nodeArgs: NODE_ARGS.join(" "),
      ...PRODUCTION_ENV,
    },
    method:
      "reconciles/s: controller_runtime_reconcile_total summed over the replicas from the first create to all Ready, over that time; each replica count on a fresh API server and simulator",
    throughputRatio: Object.fromEntries(
      results.map((r) => [
        String(r.replicas),
        one ? round(r.reconcilesPerSecond / one.reconcilesPerSecond) : null,
      ]),
    ),
    readyTimeRatio: Object.fromEntries(
      results.map((r) => [String(r.replicas), one ? round(one.readySeconds / r.readySeconds) : null]),
    ),
    cpuCeiling: cpuCeiling(results),
    results,
  };
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${report.date.slice(0, 10)}-replicas.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${table(results)}\n\nresults: ${file}\n`);
}
