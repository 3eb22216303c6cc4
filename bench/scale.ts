// `npm run bench -- --scenario=scale`: one replica holding 100,000 converged CloudInstances
// (issue #26): time to sync the cache, resident memory, CPU per 1,000 reconciles through a full
// pass over unchanged objects, and idle event-to-reconcile latency. The objects and their VMs are
// seeded directly into the in-memory API server and the m2s simulator (HTTP creates of 100,000
// objects would take longer than the run): clones of one object the operator itself converged
// first, so their status is exactly what the operator writes. Writes
// bench/results/<date>-scale.json.
import { loadavg, tmpdir } from "node:os";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startKubeApiServer, type KubeObj } from "../test/kube/server.ts";
import { startM2sSimulator, type VmRecord } from "../test/sim/m2s/index.ts";
import { credentialsSecret, SIMULATOR_ENDPOINTS } from "../test/sim/all.ts";
import { KubeClient } from "../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../src/kube/connection.ts";
import { createLogger } from "../src/observability/logger.ts";
import { CloudInstanceResource, SecretResource } from "../src/kube/resources.ts";
import { ANNOTATION_RECONCILE_REQUESTED_AT, type CloudInstance } from "../src/api/index.ts";
import { buildDist } from "../test/deploy/image.ts";
import {
  args,
  m2sInstance,
  machineInfo,
  NODE_ARGS,
  PRODUCTION_ENV,
  procCpuSeconds,
  providerCalls,
  quantiles,
  round,
  say,
  scrape,
  sleep,
  smapsBreakdown,
  startOperator,
  sum,
  until,
  writes,
} from "./common.ts";

const root = join(import.meta.dirname, "..");
if (args.get("help") === "true") {
  process.stdout.write(`node bench/run.ts --scenario=scale [options]
  --n=100000           converged CloudInstances (finalizer, instanceID, Ready) seeded before start
  --accounts=100       namespaces, one credentials Secret (API key) each; instances spread evenly
  --resync-period=S    the operator's resync period, seconds (default 30 m: no resync in the run);
                       set it to measure a periodic resync pass after the start-up pass as well
  --probes=200         idle latency probes (reconcile-requested-at annotations, 20 ms apart)
  --sim-qps=100000     the simulator's rate limit per account (the operator runs just under it)
  --cpu-prof           the operator writes a V8 CPU profile into --out/cpu-prof-scale on exit
  --out=DIR            where the JSON result goes (default bench/results)
The README's figures: --n=100000 --accounts=100 --resync-period=240 (the resync fires after the
start-up pass has finished, 30–70 s on 2 cores).
`);
  process.exit(0);
}

const N = Number(args.get("n") ?? 100_000);
const ACCOUNTS = Number(args.get("accounts") ?? 100);
const RESYNC_S = args.get("resync-period") === undefined ? undefined : Number(args.get("resync-period"));
const PROBES = Number(args.get("probes") ?? 200);
const outDir = args.get("out") ?? join(root, "bench", "results");
const cpuProf = args.get("cpu-prof") === "true";
/** Fast and generous: the provider must not be what limits a pass. */
const SIM = { transitionMs: 500, latencyMs: 1, rateLimitQps: Number(args.get("sim-qps") ?? 100_000) };

const pad = (i: number, w: number): string => String(i).padStart(w, "0");
const nsOf = (a: number): string => `scale-${pad(a, 3)}`;
const keyOf = (a: number): string => `m2s-scale-${pad(a, 3)}-key`;
const nameOf = (i: number): string => `vm-${pad(i, 6)}`;

/** Resident and peak resident size of a process, MB, from /proc (no request to the operator). */
function procMemory(pid: number): { rssMB: number; hwmMB: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, "utf8");
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rssMB: round(kb("VmRSS") / 1024), hwmMB: round(kb("VmHWM") / 1024) };
}

interface Pass {
  /** From the first reconcile of the pass to an empty queue. */
  seconds: number;
  reconciles: number;
  /** Reconciles by controller and result. */
  byResult: Record<string, number>;
  /**
   * Of those, reconciles the account gate put off before any provider call (requeued at once,
   * cloud_instance_provider_throttled_total): cheap, but they count in `reconciles`.
   */
  throttled: number;
  /** CPU per 1,000 objects the pass went through (a provider read each): the figure to scale by. */
  secondsPer1000Objects: number;
  cpuSeconds: number;
  secondsPer1000Reconciles: number;
  providerCallsPerObject: number;
  kubeWrites: number;
  events: number;
}

export async function main(): Promise<void> {
  const dist = buildDist("bench-dist-");
  const entry = join(dist.dir, "main.js");
  const api = await startKubeApiServer({ historyLimit: 50_000 });
  const sim = await startM2sSimulator({
    faults: { ...SIM },
    moreApiKeys: Array.from({ length: ACCOUNTS }, (_, a) => keyOf(a)),
  });
  const dir = mkdtempSync(join(tmpdir(), "cio-bench-scale-"));
  const kubeconfig = join(dir, "kubeconfig");
  api.writeKubeconfig(kubeconfig);
  const kube = new KubeClient({
    connection: await connect(kubeConfigFromString(api.kubeconfigYaml())),
    logger: createLogger({ level: "silent" }),
  });
  const flags = (resync: string): string[] => [
    `--resync-period=${resync}`,
    `--allowed-endpoints=${SIMULATOR_ENDPOINTS}`,
    `--provider-qps=${String(SIM.rateLimitQps - 5)}`,
    "--provider-burst=100",
  ];
  const logFile = join(dir, "operator.log");
  const logFd = openSync(logFile, "w");
  try {
    for (let a = 0; a < ACCOUNTS; a++)
      await kube.create(
        SecretResource,
        credentialsSecret({ name: "m2s-creds", namespace: nsOf(a) }, { apiKey: keyOf(a) }) as never,
      );

    // 1. The template: one object the operator converges itself.
    say("== scale: converging the template object");
    await kube.create(
      CloudInstanceResource,
      m2sInstance({ name: nameOf(0), namespace: nsOf(0) }, "m2s-creds", sim.url),
    );
    const first = await startOperator({ entry, kubeconfig, stdout: logFd, flags: flags("30m") });
    const template = (): CloudInstance | undefined =>
      (api.objects("cloudinstances") as unknown as CloudInstance[])[0];
    const isReady = (o: CloudInstance | undefined): boolean =>
      o?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
    await until("the template Ready", () => isReady(template()), 60_000);
    await sleep(2_000); // its last status write and Event settle
    await first.stop();
    const tmpl = template();
    const vmId = tmpl?.status?.instanceID;
    const vm = vmId === undefined ? undefined : sim.record(vmId);
    if (!tmpl || vmId === undefined || !vm) throw new Error("bench: the template did not converge");
    const tmplUid = tmpl.metadata.uid ?? "";

    // 2. Clones: every string naming the template's object or VM names the clone's.
    say(`== scale: seeding ${String(N)} objects and VMs`);
    const seedStart = performance.now();
    const objJson = JSON.stringify({ ...tmpl, metadata: { ...tmpl.metadata, resourceVersion: undefined } });
    const vmJson = JSON.stringify(vm);
    const objects: KubeObj[] = [];
    const vms: VmRecord[] = [];
    for (let i = 1; i < N; i++) {
      const a = i % ACCOUNTS;
      const uid = randomUUID();
      const id = `i-s${i.toString(36).padStart(5, "0")}`;
      const rename = (s: string): string =>
        s
          .replaceAll(vm.name, `${nsOf(a)}-${nameOf(i)}-${uid.slice(0, 8)}`)
          .replaceAll(tmplUid, uid)
          .replaceAll(vmId, id)
          .replaceAll(nsOf(0), nsOf(a))
          .replaceAll(nameOf(0), nameOf(i));
      objects.push(JSON.parse(rename(objJson)) as KubeObj);
      vms.push(JSON.parse(rename(vmJson)) as VmRecord);
    }
    api.seed("cloudinstances", objects);
    sim.seed(vms);
    objects.length = 0;
    vms.length = 0;
    const seedSeconds = (performance.now() - seedStart) / 1000;
    say(`== scale: seeded in ${String(round(seedSeconds))} s`);

    // 3. The operator from cold: spawn to /readyz (every cache listed).
    const load0 = loadavg()[0] ?? 0;
    const w0 = writes(api);
    const p0 = providerCalls(sim);
    if (cpuProf) mkdirSync(join(outDir, "cpu-prof-scale"), { recursive: true });
    const spawnAt = performance.now();
    const operator = await startOperator({
      entry,
      kubeconfig,
      stdout: logFd,
      flags: flags(RESYNC_S === undefined ? "30m" : `${String(RESYNC_S)}s`),
      readyTimeoutMs: 600_000,
      ...(cpuProf
        ? { extraNodeArgs: ["--cpu-prof", `--cpu-prof-dir=${join(outDir, "cpu-prof-scale")}`] }
        : {}),
    });
    const readyAt = performance.now();
    const syncSeconds = (readyAt - spawnAt) / 1000;
    const pid = operator.child.pid ?? 0;
    const atSync = { ...procMemory(pid), cpuSeconds: procCpuSeconds(pid) };
    say(`== scale: caches synced after ${String(round(syncSeconds))} s`);
    const rss: number[] = [];
    const sampler = setInterval(() => {
      try {
        rss.push(procMemory(pid).rssMB);
      } catch {
        // exited
      }
    }, 1_000);
    try {
      const reconciles = (m: Awaited<ReturnType<typeof scrape>>): number =>
        sum(m, "controller_runtime_reconcile_total");
      const depth = (m: Awaited<ReturnType<typeof scrape>>): number =>
        sum(m, "workqueue_depth", { name: "cloudinstance" });

      /**
       * Waits until `count` more VM reads were made and the queue is empty. The pass is measured from
       * the last scrape before its first reconcile (a resync starts when the informers' timer says).
       */
      const pass = async (
        first: Awaited<ReturnType<typeof scrape>>,
        count: number,
        what: string,
        /** A known start (the start-up pass: at /readyz, no reconcile yet): no waiting for one. */
        known?: { at: number; w: { objects: number; events: number }; p: number; cpu: number },
      ): Promise<Pass> => {
        const waitStart = performance.now();
        let m0 = first;
        let start = known?.at ?? performance.now();
        let wStart = known?.w ?? writes(api);
        let pStart = known?.p ?? providerCalls(sim);
        // CPU from /proc: prom-client's process_cpu_seconds_total starts at its registration.
        let cStart = known?.cpu ?? procCpuSeconds(pid);
        let m: Awaited<ReturnType<typeof scrape>>;
        for (;;) {
          const before = {
            at: performance.now(),
            w: writes(api),
            p: providerCalls(sim),
            cpu: procCpuSeconds(pid),
          };
          m = await scrape(operator.port);
          if (known === undefined && reconciles(m) === reconciles(m0) && depth(m) === 0) {
            // Not started yet: this scrape is the baseline.
            m0 = m;
            start = before.at;
            wStart = before.w;
            pStart = before.p;
            cStart = before.cpu;
          }
          // Done when every VM was read once and nothing waits in the queue (put-off objects
          // wait in the account gate's line, not in the queue: a reconcile count is not enough).
          if (providerCalls(sim) - pStart >= count && depth(m) === 0) break;
          if (performance.now() - waitStart > 3_600_000) throw new Error(`bench: ${what} did not finish`);
          await sleep(250);
        }
        const r = reconciles(m) - reconciles(m0);
        const byResult: Record<string, number> = {};
        for (const x of m)
          if (x.name === "controller_runtime_reconcile_total") {
            const k = `${x.labels.controller ?? ""}/${x.labels.result ?? ""}`;
            const was = m0.find(
              (y) =>
                y.name === x.name &&
                y.labels.controller === x.labels.controller &&
                y.labels.result === x.labels.result,
            );
            if (x.value - (was?.value ?? 0) > 0) byResult[k] = x.value - (was?.value ?? 0);
          }
        const cpu = procCpuSeconds(pid) - cStart;
        const w = writes(api);
        const result: Pass = {
          seconds: round((performance.now() - start) / 1000),
          reconciles: r,
          byResult,
          throttled:
            sum(m, "cloud_instance_provider_throttled_total") -
            sum(m0, "cloud_instance_provider_throttled_total"),
          secondsPer1000Objects: round((cpu / N) * 1000),
          cpuSeconds: round(cpu),
          secondsPer1000Reconciles: round((cpu / Math.max(1, r)) * 1000),
          providerCallsPerObject: round((providerCalls(sim) - pStart) / N),
          kubeWrites: w.objects - wStart.objects,
          events: w.events - wStart.events,
        };
        say(`== scale: ${what} ${JSON.stringify(result)}`);
        return result;
      };

      // 4. The start-up pass: every object is reconciled once (read its VM, nothing to write).
      // The start-up pass counts from /readyz: the controllers start once the caches are synced,
      // so no reconcile had run; the CPU until then is the sync's (read from /proc right after).
      const startupPass = await pass([], N, "start-up pass", {
        at: readyAt,
        w: w0,
        p: p0,
        cpu: atSync.cpuSeconds,
      });
      const mPass = await scrape(operator.port);
      const afterPass = procMemory(pid);

      // 5. A periodic resync, when asked for: the same pass, triggered by the informers' timer.
      let resyncPass: Pass | undefined;
      if (RESYNC_S !== undefined) resyncPass = await pass(await scrape(operator.port), N, "resync pass");

      // 6. Idle latency: single updates, one at a time, on objects across the namespaces.
      await sleep(2_000);
      const m2 = await scrape(operator.port);
      for (let k = 0; k < PROBES; k++) {
        const i = Math.floor((k * N) / PROBES);
        await kube.patch(CloudInstanceResource, nsOf(i % ACCOUNTS), nameOf(i), {
          metadata: { annotations: { [ANNOTATION_RECONCILE_REQUESTED_AT]: `probe-${String(k)}` } },
        });
        await sleep(20);
      }
      await sleep(1_000);
      const m3 = await scrape(operator.port);
      const end = procMemory(pid);
      const breakdown = smapsBreakdown(pid);
      const w1 = writes(api);

      const result = {
        n: N,
        accounts: ACCOUNTS,
        seedSeconds: round(seedSeconds),
        cacheSync: {
          seconds: round(syncSeconds),
          what: "operator process spawned to /readyz OK (every informer listed; polled every 100 ms)",
          cpuSeconds: round(atSync.cpuSeconds),
          rssMB: atSync.rssMB,
        },
        startupPass,
        ...(resyncPass === undefined ? {} : { resyncPass, resyncPeriodSeconds: RESYNC_S }),
        memory: {
          peakRssMB: end.hwmMB,
          rssAfterStartupPassMB: afterPass.rssMB,
          rssEndMB: end.rssMB,
          rssSamples: rss.length,
          heapUsedAfterStartupPassMB: round(sum(mPass, "nodejs_heap_size_used_bytes") / 2 ** 20),
          heapTotalAfterStartupPassMB: round(sum(mPass, "nodejs_heap_size_total_bytes") / 2 ** 20),
          heapUsedEndMB: round(sum(m3, "nodejs_heap_size_used_bytes") / 2 ** 20),
          ...(breakdown === undefined ? {} : { residentBreakdownEndMB: breakdown }),
        },
        latency: {
          idle: quantiles(m2, m3, "workqueue_queue_duration_seconds"),
          probes: PROBES,
        },
        /** Object writes since the operator started, less the bench's own probe patches. */
        operatorWritesSinceStart: {
          objects: w1.objects - w0.objects - PROBES,
          events: w1.events - w0.events,
        },
        providerCallsSinceStart: providerCalls(sim) - p0,
        loadAverage: { before: round(load0), after: round(loadavg()[0] ?? 0) },
      };
      say(JSON.stringify(result));
      const report = {
        date: new Date().toISOString(),
        scenario: "scale",
        machine: machineInfo(),
        simulator: { provider: "m2s", accounts: ACCOUNTS, ...SIM },
        operator: {
          logLevel: "info (default)",
          flags: flags(RESYNC_S === undefined ? "30m" : `${String(RESYNC_S)}s`).join(" "),
        },
        runtime: {
          entry: "dist/main.js (tsc -p tsconfig.build.json, as the image)",
          nodeArgs: NODE_ARGS.join(" "),
          ...PRODUCTION_ENV,
        },
        method:
          "one object converged by the operator, cloned N-1 times into the API server and the simulator (uid, names, VM id replaced); operator restarted cold",
        result,
      };
      mkdirSync(outDir, { recursive: true });
      const file = join(outDir, `${report.date.slice(0, 10)}-scale-${String(N)}.json`);
      writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(`${table(result)}\n\nresults: ${file}\n`);
    } finally {
      clearInterval(sampler);
      await operator.stop();
    }
  } finally {
    await kube.close();
    await sim.close();
    await api.close();
    dist.remove();
  }
}

function table(r: {
  n: number;
  cacheSync: { seconds: number };
  startupPass: Pass;
  resyncPass?: Pass;
  memory: { peakRssMB: number; heapUsedAfterStartupPassMB: number };
  latency: { idle: { p50ms: number; p99ms: number } };
}): string {
  const rows: [string, string][] = [
    ["objects", String(r.n)],
    ["cache sync (spawn to /readyz)", `${String(r.cacheSync.seconds)} s`],
    [
      "peak RSS / V8 heap after the start-up pass",
      `${String(r.memory.peakRssMB)} / ${String(r.memory.heapUsedAfterStartupPassMB)} MB`,
    ],
    [
      "start-up pass: time, CPU per 1,000 reconciles, API writes",
      `${String(r.startupPass.seconds)} s, ${String(r.startupPass.secondsPer1000Reconciles)} s (${String(r.startupPass.secondsPer1000Objects)} s per 1,000 objects), ${String(r.startupPass.kubeWrites)}`,
    ],
    ...(r.resyncPass === undefined
      ? []
      : ([
          [
            "resync pass: time, CPU per 1,000 reconciles, API writes",
            `${String(r.resyncPass.seconds)} s, ${String(r.resyncPass.secondsPer1000Reconciles)} s (${String(r.resyncPass.secondsPer1000Objects)} s per 1,000 objects), ${String(r.resyncPass.kubeWrites)}`,
          ],
        ] as [string, string][])),
    [
      "idle event to reconcile p50 / p99",
      `${String(r.latency.idle.p50ms)} / ${String(r.latency.idle.p99ms)} ms`,
    ],
  ];
  return ["| | |", "|---|---|", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
}
