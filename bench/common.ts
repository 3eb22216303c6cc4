// Helpers shared by the bench scenarios (bench/run.ts, bench/operator-bound.ts): arguments,
// the image's runtime, the operator process, metrics scraping and the counters every table uses.
import { spawn, type ChildProcess } from "node:child_process";
import { cpus, totalmem } from "node:os";
import type { CloudInstance } from "../src/api/index.ts";
import { createServer, type Server } from "node:net";
import { readFileSync, realpathSync } from "node:fs";
import type { KubeApiServer } from "../test/kube/server.ts";
import type { M2sSimulator } from "../test/sim/m2s/index.ts";
import { imageRuntime } from "../test/deploy/image.ts";
import { parseMetrics, histogramQuantile, type Samples } from "./prometheus.ts";

/** `--k=v` and `--flag` arguments. */
export const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k = "", ...v] = a.replace(/^--/, "").split("=");
    return [k, v.length === 0 ? "true" : v.join("=")] as const;
  }),
);

export const say = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How the image runs node (Dockerfile ENV and ENTRYPOINT), so the figures are the shipped ones. */
export const IMAGE = imageRuntime();
/**
 * The image's memory-relevant environment. `--env="K=V;K=V"` overrides it for exploratory runs
 * (allocator and V8 settings).
 */
export const PRODUCTION_ENV: Record<string, string> = {
  ...Object.fromEntries(
    Object.entries(IMAGE.env).filter(
      ([k]) => k === "NODE_OPTIONS" || k.startsWith("MALLOC_") || k === "GLIBC_TUNABLES",
    ),
  ),
  ...Object.fromEntries(
    (args.get("env") ?? "")
      .split(";")
      .filter((kv) => kv.includes("="))
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as const),
  ),
};
/**
 * Node's own flags from the image's ENTRYPOINT; some V8 flags are refused in NODE_OPTIONS.
 * `--node-args="..."` overrides them for exploratory runs.
 */
export const NODE_ARGS: string[] =
  args
    .get("node-args")
    ?.split(" ")
    .filter((a) => a !== "") ?? IMAGE.nodeArgs;

export interface OperatorProcess {
  child: ChildProcess;
  /** Metrics port; probes on port + 1. */
  port: number;
  stop(): Promise<void>;
}

/** Operators spawned and not yet exited. */
const running = new Set<ChildProcess>();
let reaperInstalled = false;

/**
 * Operators outlive a bench that is stopped (Ctrl-C, SIGTERM, a crash): a stopped replicas run
 * once left one replica reconciling against a dead API server, eating the CPU the next run
 * measured. On the bench's exit, whatever it started is killed.
 */
export function reapOnExit(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.once("exit", () => {
    for (const c of running) c.kill("SIGKILL");
  });
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)
    process.once(signal, () => process.exit(code));
}

/**
 * Starts the operator (`entry`, the built dist/main.js) with the image's node flags and
 * environment, metrics on a free port, and waits for /readyz.
 */
export async function startOperator(opts: {
  entry: string;
  kubeconfig: string;
  flags: string[];
  extraNodeArgs?: string[];
  cwd?: string;
  /** A file descriptor for the operator's log; default: kept in memory (the tail). */
  stdout?: number;
  /** How long /readyz (caches synced) may take; default 60 s. */
  readyTimeoutMs?: number;
  /** Called right after the spawn, before the operator has done anything (a CPU limit, say). */
  onSpawn?: (pid: number) => void;
}): Promise<OperatorProcess> {
  const port = await freePortPair();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...NODE_ARGS,
      ...(opts.extraNodeArgs ?? []),
      opts.entry,
      `--kubeconfig=${opts.kubeconfig}`,
      `--metrics-bind-address=127.0.0.1:${String(port)}`,
      `--health-probe-bind-address=127.0.0.1:${String(port + 1)}`,
      "--metrics-secure=false",
      ...opts.flags,
    ],
    {
      stdio: ["ignore", opts.stdout ?? "pipe", "inherit"],
      env: { ...process.env, ...PRODUCTION_ENV },
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    },
  );
  reapOnExit(child);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  if (opts.onSpawn && child.pid !== undefined) opts.onSpawn(child.pid);
  // Logs are at error level: keep the tail to explain an early exit.
  let logTail = "";
  child.stdout?.on("data", (b: Buffer) => {
    logTail = (logTail + b.toString()).slice(-4000);
  });
  const stop = async (): Promise<void> => {
    child.kill("SIGTERM");
    await exited;
  };
  const readyBy = performance.now() + (opts.readyTimeoutMs ?? 60_000);
  try {
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${String(port + 1)}/readyz`)).ok) break;
      } catch {
        // not listening yet
      }
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `bench: operator exited (${String(child.exitCode ?? child.signalCode)}):\n${logTail}`,
        );
      if (performance.now() > readyBy) throw new Error("bench: operator never became ready");
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, port, stop };
}

/**
 * Two consecutive free ports (metrics, probes), below the kernel's ephemeral range (32768 and
 * up on Linux). A port the kernel picked for a listen on port 0 is free only until the next
 * outgoing connection of any process takes it, which on a busy machine happened between the
 * check and the operator's own listen (EADDRINUSE); ports below the range are never given out
 * that way, and a pair another bench took first is seen taken here.
 */
export async function freePortPair(): Promise<number> {
  const listen = (port: number): Promise<Server | undefined> =>
    new Promise((resolve) => {
      const srv = createServer();
      srv.once("error", () => resolve(undefined));
      srv.listen(port, "127.0.0.1", () => resolve(srv));
    });
  for (;;) {
    const port = 20_000 + 2 * Math.floor(Math.random() * 6_000);
    const first = await listen(port);
    const second = first ? await listen(port + 1) : undefined;
    await Promise.all([first, second].map((s) => new Promise((r) => (s ? s.close(r) : r(undefined)))));
    if (first && second) return port;
  }
}

export async function scrape(port: number): Promise<Samples> {
  const res = await fetch(`http://127.0.0.1:${String(port)}/metrics`);
  return parseMetrics(await res.text());
}
export const sum = (s: Samples, name: string, match: Record<string, string> = {}): number =>
  s
    .filter((x) => x.name === name && Object.entries(match).every(([k, v]) => x.labels[k] === v))
    .reduce((a, x) => a + x.value, 0);

export function writes(api: KubeApiServer): { objects: number; events: number } {
  const r = api.requestCounts().byResource;
  let objects = 0;
  let events = 0;
  for (const [k, v] of Object.entries(r)) {
    const [verb, resource] = k.split(" ");
    if (!["create", "update", "patch", "delete"].includes(verb ?? "")) continue;
    if (resource?.startsWith("cloudinstances")) objects += v;
    if (resource === "events") events += v;
  }
  return { objects, events };
}
export const providerCalls = (sim: M2sSimulator): number =>
  [...sim.requestCounts.values()].reduce((a, b) => a + b, 0);

export async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (t: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++];
        if (item !== undefined) await fn(item);
      }
    }),
  );
}

export async function until(what: string, pred: () => boolean, timeoutMs: number): Promise<number> {
  const start = performance.now();
  while (!pred()) {
    if (performance.now() - start > timeoutMs) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(50);
  }
  return (performance.now() - start) / 1000;
}

export function quantiles(before: Samples, after: Samples, name: string): { p50ms: number; p99ms: number } {
  const match = { name: "cloudinstance" };
  return {
    p50ms: round(histogramQuantile(0.5, before, after, name, match) * 1000),
    p99ms: round(histogramQuantile(0.99, before, after, name, match) * 1000),
  };
}
export const round = (x: number): number => Math.round(x * 100) / 100;

/**
 * Where the resident memory sits (Linux only): malloc's brk heap, anonymous mappings (V8's
 * pages, malloc's mmapped arenas), file-backed code and data. RSS alone cannot say which
 * allocator to blame.
 */
export function smapsBreakdown(pid: number): Record<string, number> | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${String(pid)}/smaps`, "utf8");
  } catch {
    return undefined;
  }
  // The operator is spawned with this process's node; smaps names the resolved file.
  const nodeBinary = realpathSync(process.execPath);
  const kb: Record<string, number> = {};
  let bucket = "anonymous";
  for (const line of text.split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const name = header[1] ?? "";
      bucket =
        name === ""
          ? "anonymous"
          : name === "[heap]"
            ? "mallocBrk"
            : name.startsWith("[")
              ? "other"
              : name === nodeBinary
                ? "nodeBinary"
                : "files";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[bucket] = (kb[bucket] ?? 0) + Number(rss[1]);
  }
  return Object.fromEntries(Object.entries(kb).map(([k, v]) => [k, round(v / 1024)]));
}

/** The machine a result was measured on, for every scenario's report. */
export function machineInfo(): { cpus: number; cpuModel: string; memoryGB: number; node: string } {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "",
    memoryGB: round(totalmem() / 2 ** 30),
    node: process.version,
  };
}

/** The CloudInstance every bench creates: one small m2s VM on the given account's Secret. */
export function m2sInstance(
  at: { name: string; namespace: string },
  secret: string,
  endpoint: string,
): CloudInstance {
  return {
    apiVersion: "compute.instance-operator.dev/v1alpha1",
    kind: "CloudInstance",
    metadata: { name: at.name, namespace: at.namespace },
    spec: {
      provider: { name: "m2s", credentialsSecretRef: { name: secret }, endpoint },
      region: "fr-par-1",
      plan: "starter",
      image: "ubuntu-22.04",
    },
  } as unknown as CloudInstance;
}

/** An operator configuration a bench runs: its flags beyond the scenario's own. */
export interface Scenario {
  id: string;
  title: string;
  flags: string[];
}
/** This operator as shipped. */
export const OURS: Scenario = { id: "ours", title: "this operator (defaults)", flags: [] };
/** The baseline every bench compares with: controller-runtime's defaults. */
export const CONTROLLER_RUNTIME_DEFAULTS: Scenario = {
  id: "controller-runtime-defaults",
  title: "controller-runtime defaults (1 worker, 10 qps bucket)",
  flags: ["--max-concurrent-reconciles=1", "--queue-qps=10", "--queue-burst=100"],
};

/** User + system CPU seconds of a process so far, from /proc (clock ticks of 1/100 s). */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
