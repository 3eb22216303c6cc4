/**
 * The chaos suite's world: the in-memory API server, the five provider simulators with faults,
 * and the real operator as a child process (src/main.ts, debug logs captured) that can be
 * SIGKILLed and restarted at will.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startKubeApiServer, type KubeApiServer } from "../kube/server.ts";
import { credentialsSecret, instanceManifest, SIMULATOR_ENDPOINTS, SIMULATORS } from "../sim/all.ts";
import type { FaultKnobs, SimProfile, Simulator } from "../sim/common.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../../src/kube/connection.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { CloudInstanceResource, SecretResource } from "../../src/kube/resources.ts";
import type { CloudInstance, ProviderName } from "../../src/api/index.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";

const root = join(import.meta.dirname, "..", "..");

export interface OperatorProcess {
  readonly pid: number | undefined;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
  /**
   * Resolves once the process has its caches synced and its workers running (or has exited):
   * a kill scenario waits for it, so a slow start on a loaded machine cannot starve the run.
   */
  readonly started: Promise<void>;
  /** Its /metrics (plain HTTP on loopback), for the secret scan. */
  readonly metricsUrl: string;
  /** SIGTERM, then SIGKILL if the process has not exited within `graceMs`: a test hook never hangs. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface OperatorStartOptions {
  /** Another kubeconfig (e.g. through a proxy this test can partition). */
  kubeconfig?: string;
  /** Node flags before the script (e.g. --import of a clock skew). */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

export interface ChaosWorld {
  api: KubeApiServer;
  kube: KubeClient;
  sims: Map<ProviderName, Simulator>;
  namespace: string;
  /** Everything every operator process wrote (debug logs). */
  logs: string[];
  startOperator(extra?: string[], opts?: OperatorStartOptions): Promise<OperatorProcess>;
  /** A kubeconfig file reaching the API server through `server` (a proxy) instead of directly. */
  kubeconfigVia(server: string): string;
  /** The /metrics text of every operator process still running. */
  scrapeMetrics(): Promise<string>;
  instance(provider: ProviderName, name: string, spec?: Record<string, unknown>): Promise<CloudInstance>;
  instances(): CloudInstance[];
  /** Every secret value in play: what must never show up in logs, Events or status. */
  secrets(): string[];
  close(): Promise<void>;
}

export async function startChaosWorld(
  opts: { faults?: Partial<FaultKnobs>; namespace?: string; profile?: SimProfile } = {},
): Promise<ChaosWorld> {
  const namespace = opts.namespace ?? "chaos";
  const api = await startKubeApiServer({ historyLimit: 50_000 });
  const dir = mkdtempSync(join(tmpdir(), "cio-chaos-"));
  const kubeconfig = join(dir, "kubeconfig");
  api.writeKubeconfig(kubeconfig);
  const kube = new KubeClient({
    connection: await connect(kubeConfigFromString(api.kubeconfigYaml())),
    logger: createLogger({ level: "silent" }),
  });
  const sims = new Map<ProviderName, Simulator>();
  for (const provider of PROVIDER_NAMES) {
    const sim = await SIMULATORS[provider].start({ transitionMs: 150, ...opts.faults }, opts.profile);
    sims.set(provider, sim);
    await kube.create(
      SecretResource,
      credentialsSecret({ name: `${provider}-creds`, namespace }, sim.credentials) as never,
    );
  }
  const logs: string[] = [];
  let kubeconfigs = 0;
  const running = new Set<ChildProcess>();
  const operators = new Map<ChildProcess, string>();

  return {
    api,
    kube,
    sims,
    namespace,
    logs,
    kubeconfigVia(server: string) {
      const file = join(dir, `kubeconfig-${String(++kubeconfigs)}`);
      writeFileSync(file, api.kubeconfigYaml().replaceAll(api.url, server));
      return file;
    },
    async startOperator(extra = [], opts = {}) {
      const port = await freePort();
      const child = spawn(
        process.execPath,
        [
          ...(opts.nodeArgs ?? []),
          join(root, "src/main.ts"),
          `--kubeconfig=${opts.kubeconfig ?? kubeconfig}`,
          `--metrics-bind-address=127.0.0.1:${String(port)}`,
          "--metrics-secure=false",
          "--health-probe-bind-address=0",
          "--resync-period=3s",
          "--poll-initial=200ms",
          "--poll-max=1s",
          "--provider-timeout=1500ms",
          "--provider-qps=200",
          "--provider-burst=50",
          "--log-level=debug",
          `--allowed-endpoints=${SIMULATOR_ENDPOINTS}`,
          ...extra,
        ],
        { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } },
      );
      running.add(child);
      let markStarted: () => void = () => undefined;
      const started = new Promise<void>((resolve) => {
        markStarted = resolve;
      });
      child.stdout.on("data", (b: Buffer) => {
        const text = b.toString();
        logs.push(text);
        if (text.includes('"msg":"starting workers"')) markStarted();
      });
      child.stderr.on("data", (b: Buffer) => logs.push(b.toString()));
      const exited = new Promise<number | null>((resolve) =>
        child.once("exit", (code) => {
          running.delete(child);
          markStarted();
          resolve(code);
        }),
      );
      const op = {
        pid: child.pid,
        metricsUrl: `http://127.0.0.1:${String(port)}/metrics`,
        started,
        exited,
        kill: (signal: NodeJS.Signals) => {
          child.kill(signal);
        },
        async stop(graceMs = 40_000) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          try {
            return await exited;
          } finally {
            clearTimeout(timer);
          }
        },
      };
      operators.set(child, op.metricsUrl);
      return op;
    },
    async scrapeMetrics() {
      const texts = await Promise.all(
        [...running].map(async (child) => {
          const url = operators.get(child);
          if (url === undefined) return "";
          try {
            return await (await fetch(url)).text();
          } catch {
            return "";
          }
        }),
      );
      return texts.join("\n");
    },
    async instance(provider, name, spec = {}) {
      const sim = sims.get(provider);
      if (!sim) throw new Error(`no ${provider} simulator`);
      return kube.create(
        CloudInstanceResource,
        instanceManifest(provider, { name, namespace, endpoint: sim.url }, spec) as never,
      );
    },
    instances: () => api.objects("cloudinstances") as unknown as CloudInstance[],
    secrets() {
      const keys = ["apiKey", "secretAccessKey", "token", "password"];
      return [...sims.values()].flatMap((s) =>
        Object.entries(s.credentials)
          .filter(([k]) => keys.includes(k))
          .map(([, v]) => v),
      );
    },
    async close() {
      for (const child of running) child.kill("SIGKILL");
      await kube.close();
      for (const sim of sims.values()) await sim.close();
      await api.close();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A loopback port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Retries a kube call through injected API faults (the test's own client is not under test).
 * It gives up after `deadlineMs`: the operator competes for the same injected faults, so a
 * count of tries says little on a slow machine.
 */
export async function persist<T>(fn: () => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "ERR_KUBE_ALREADY_EXISTS" || code === "ERR_KUBE_NOT_FOUND" || Date.now() > deadline)
        throw err;
      // Short: the chaos injects a few faults every 250 ms, and a slower retry would meet
      // nothing but faults while the operator is backing off.
      await sleep(20);
    }
  }
}
