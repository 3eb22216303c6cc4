/**
 * The real-server tests' world: a real kube-apiserver + etcd (envtest.ts), the five provider
 * simulators with their Secrets in one namespace, and the real operator (src/main.ts) as a
 * child process with the ServiceAccount identity of deploy/manifests/operator.yaml, whose RBAC
 * is applied first: a permission the manifests lack fails these tests with a 403.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { instanceManifest, SIMULATORS, credentialsSecret, SIMULATOR_ENDPOINTS } from "../sim/all.ts";
import type { FaultKnobs, Simulator } from "../sim/common.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { CloudInstanceResource, SecretResource } from "../../src/kube/resources.ts";
import type { CloudInstance, ProviderName } from "../../src/api/index.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";
import { kubeClientFor } from "./client.ts";
import { ROOT, startEnvtest, type Envtest } from "./envtest.ts";
import { startCreateProxy } from "./create-proxy.ts";
import { spawnGuarded, type Guarded } from "./processes.ts";

export const ready = (o: CloudInstance): boolean =>
  o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** The flags every operator process of these tests runs with: short timings, debug logs. */
export const FAST_FLAGS = [
  "--metrics-bind-address=0",
  "--health-probe-bind-address=0",
  "--resync-period=5s",
  "--poll-initial=200ms",
  "--poll-max=1s",
  "--provider-timeout=3s",
  "--log-level=debug",
  `--allowed-endpoints=${SIMULATOR_ENDPOINTS}`,
];

export interface RealWorld {
  env: Envtest;
  kube: KubeClient;
  sims: Map<ProviderName, Simulator>;
  namespace: string;
  /** Starts src/main.ts with `--kubeconfig` (the operator identity unless given) and `args`. */
  startOperator(args?: readonly string[], kubeconfig?: string): Guarded;
  /** Everything every operator process of this world wrote. */
  logs(): string;
  instance(provider: ProviderName, name: string, spec?: Record<string, unknown>): Promise<CloudInstance>;
  get(name: string): Promise<CloudInstance>;
  waitFor(
    name: string,
    pred: (o: CloudInstance) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<CloudInstance>;
  gone(name: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds; the message names what never happened and the last value seen. */
export async function until<T>(
  read: () => Promise<T> | T,
  check: (v: T) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (check(v)) return v;
    if (Date.now() > deadline)
      assert.fail(
        `timed out after ${timeoutMs} ms waiting for: ${what}; last: ${JSON.stringify(v)?.slice(0, 1500)}`,
      );
    await sleep(150);
  }
}

export async function startRealWorld(
  opts: {
    namespace?: string;
    providers?: readonly ProviderName[];
    faults?: Partial<FaultKnobs>;
    /** Put a proxy before every simulator that calls this right after a VM was created. */
    onProviderCreate?: () => void;
  } = {},
): Promise<RealWorld> {
  const namespace = opts.namespace ?? "real";
  const env = await startEnvtest({
    operator: { namespace: "cloud-instance-operator", serviceAccount: "cloud-instance-operator" },
  });
  const sims = new Map<ProviderName, Simulator>();
  const endpoints = new Map<ProviderName, string>();
  const proxies: { close(): Promise<void> }[] = [];
  const procs: Guarded[] = [];
  const finished: string[] = [];
  let kube: KubeClient | undefined;
  const close = async (): Promise<void> => {
    for (const p of procs) await p.stop(10_000);
    await kube?.close();
    for (const proxy of proxies) await proxy.close();
    for (const sim of sims.values()) await sim.close();
    await env.stop();
  };
  try {
    await env.kubectl(["apply", "-f", join(ROOT, "deploy", "manifests", "operator.yaml")]);
    await env.kubectl(["create", "namespace", namespace]);
    kube = await kubeClientFor(env.adminKubeconfig);
    for (const provider of opts.providers ?? PROVIDER_NAMES) {
      const sim = await SIMULATORS[provider].start({ transitionMs: 150, ...opts.faults });
      sims.set(provider, sim);
      endpoints.set(provider, sim.url);
      if (opts.onProviderCreate) {
        const proxy = await startCreateProxy(sim.url, () => sim.vms().length, opts.onProviderCreate);
        proxies.push(proxy);
        endpoints.set(provider, proxy.url);
      }
      await kube.create(
        SecretResource,
        credentialsSecret({ name: `${provider}-creds`, namespace }, sim.credentials) as never,
      );
    }
  } catch (err) {
    await close();
    throw err;
  }
  const client = kube;
  const get = (name: string): Promise<CloudInstance> => client.get(CloudInstanceResource, namespace, name);
  return {
    env,
    kube: client,
    sims,
    namespace,
    startOperator(args = FAST_FLAGS, kubeconfig = env.operatorKubeconfig) {
      const p = spawnGuarded(
        "operator",
        process.execPath,
        [join(ROOT, "src", "main.ts"), `--kubeconfig=${kubeconfig}`, ...args],
        { cwd: ROOT },
      );
      procs.push(p);
      void p.exited.then(() => finished.push(p.output()));
      return p;
    },
    logs: () => [...finished, ...procs.filter((p) => p.alive()).map((p) => p.output())].join("\n"),
    async instance(provider, name, spec = {}) {
      const endpoint = endpoints.get(provider);
      if (!endpoint) throw new Error(`no ${provider} simulator`);
      return client.create(
        CloudInstanceResource,
        instanceManifest(provider, { name, namespace, endpoint }, spec) as never,
      );
    },
    get,
    waitFor: (name, pred, what, timeoutMs = 60_000) =>
      until(() => get(name), pred, `${name}: ${what}`, timeoutMs),
    async gone(name, timeoutMs = 60_000) {
      await until(
        async () => {
          try {
            return (await get(name)).metadata;
          } catch (err) {
            if (isNotFound(err)) return "gone";
            throw err;
          }
        },
        (v) => v === "gone",
        `${name} deleted`,
        timeoutMs,
      );
    },
    close,
  };
}

/** Lines of the operator's logs that report a 403 from the API server. */
export function forbiddenLines(logs: string): string[] {
  // A 403 as a status, not any 403 in a line: a reconcile that took 403 ms is no refusal.
  return logs
    .split("\n")
    .filter((l) => /forbidden|ERR_KUBE_FORBIDDEN|"status(?:Code)?":\s*403\b|\b403 Forbidden\b/i.test(l));
}
