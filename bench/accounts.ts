// The world of the operator-bound scenarios (bench/operator-bound.ts, bench/replicas.ts): many
// accounts (one credentials Secret and one API key each) on one fast m2s simulator, the
// in-memory API server, a client for the bench's own writes, and the operator flags that keep
// the provider and the client-side kube limiter out of the way.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startKubeApiServer, type KubeApiServer } from "../test/kube/server.ts";
import { startM2sSimulator, type M2sSimulator } from "../test/sim/m2s/index.ts";
import { credentialsSecret, SIMULATOR_ENDPOINTS } from "../test/sim/all.ts";
import { KubeClient } from "../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../src/kube/connection.ts";
import { createLogger } from "../src/observability/logger.ts";
import { CloudInstanceResource, SecretResource } from "../src/kube/resources.ts";
import type { CloudInstance } from "../src/api/index.ts";
import { args, forEachLimited, m2sInstance } from "./common.ts";

/** The simulated accounts: fast enough that the operator, not the provider, is the bottleneck. */
export const SIM = {
  transitionMs: Number(args.get("transition-ms") ?? 500),
  latencyMs: 1,
  rateLimitQps: Number(args.get("sim-qps") ?? 1000),
};
/** The bench's own apply (and the empty reconciler's): 64 requests in flight. */
export const APPLY_CONCURRENCY = 64;
export const NAMESPACE = "bench";
/** No resync inside a run: every reconcile is one the lifecycle needs. */
export const RESYNC = "30m";

export const keyOf = (a: number): string => `m2s-account-${String(a).padStart(3, "0")}-key`;
export const secretOf = (a: number): string => `m2s-account-${String(a).padStart(3, "0")}`;

export function instance(name: string, account: number, endpoint: string): CloudInstance {
  return m2sInstance({ name, namespace: NAMESPACE }, secretOf(account), endpoint);
}

/** The operator's flags for these scenarios (before the scenario's own). */
export function operatorFlags(logLevel: string): string[] {
  return [
    `--resync-period=${RESYNC}`,
    `--log-level=${logLevel}`,
    `--allowed-endpoints=${SIMULATOR_ENDPOINTS}`,
    // The API server's throughput is the yardstick: no client-side kube rate limit.
    "--kube-api-qps=0",
    `--provider-qps=${String(SIM.rateLimitQps - 5)}`,
    "--provider-burst=50",
  ];
}

export const isReady = (o: CloudInstance): boolean =>
  o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** Whether the world holds exactly `n` CloudInstances, every one Ready. */
export const allReady = (world: Pick<AccountsWorld, "instances">, n: number) => (): boolean => {
  const all = world.instances();
  return all.length === n && all.every(isReady);
};

export interface AccountsWorld {
  api: KubeApiServer;
  sim: M2sSimulator;
  kube: KubeClient;
  kubeconfig: string;
  /** A scratch directory (kubeconfig, operator logs). */
  dir: string;
  instances: () => CloudInstance[];
  names: string[];
  /** Creates the N instances, spread evenly over the accounts, APPLY_CONCURRENCY at a time. */
  apply(): Promise<void>;
  /** The same for other names (a warm-up batch, say). */
  create(names: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** The fast simulator with one API key per account, and the bench's own apply. */
export interface Accounts {
  sim: M2sSimulator;
  names: string[];
  /** Creates the N instances, spread evenly over the accounts, APPLY_CONCURRENCY at a time. */
  apply: () => Promise<void>;
  /** The same for other names (a warm-up batch, say). */
  create: (names: readonly string[]) => Promise<void>;
}

/**
 * The simulator with `accounts` API keys and their credentials Secrets (written by `admin`);
 * the bench's creates go through `writer` (on a real API server, the identity the empty
 * reconciler of the ideal sends its creates with).
 */
export async function startAccounts(
  n: number,
  accounts: number,
  admin: KubeClient,
  writer: KubeClient = admin,
): Promise<Accounts> {
  const sim = await startM2sSimulator({
    faults: { ...SIM },
    moreApiKeys: Array.from({ length: accounts }, (_, a) => keyOf(a)),
  });
  try {
    for (let a = 0; a < accounts; a++)
      await admin.create(
        SecretResource,
        credentialsSecret({ name: secretOf(a), namespace: NAMESPACE }, { apiKey: keyOf(a) }) as never,
      );
  } catch (err) {
    await sim.close();
    throw err;
  }
  const names = Array.from({ length: n }, (_, i) => `vm-${String(i).padStart(5, "0")}`);
  const create = (batch: readonly string[]): Promise<void> =>
    forEachLimited(
      batch.map((name, i) => ({ name, account: i % accounts })),
      APPLY_CONCURRENCY,
      async ({ name, account }) => {
        await writer.create(CloudInstanceResource, instance(name, account, sim.url));
      },
    );
  return { sim, names, apply: () => create(names), create };
}

/** A fresh API server and simulator with `accounts` credentials Secrets, nothing applied yet. */
export async function startAccountsWorld(
  n: number,
  accounts: number,
  prefix: string,
): Promise<AccountsWorld> {
  const api = await startKubeApiServer({ historyLimit: Math.max(10_000, n * 8) });
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const kubeconfig = join(dir, "kubeconfig");
  api.writeKubeconfig(kubeconfig);
  const kube = new KubeClient({
    connection: await connect(kubeConfigFromString(api.kubeconfigYaml())),
    logger: createLogger({ level: "silent" }),
  });
  const { sim, names, apply, create } = await startAccounts(n, accounts, kube);
  return {
    api,
    sim,
    kube,
    kubeconfig,
    dir,
    names,
    instances: () => api.objects("cloudinstances") as unknown as CloudInstance[],
    apply,
    create,
    close: async () => {
      await kube.close();
      await sim.close();
      await api.close();
    },
  };
}
