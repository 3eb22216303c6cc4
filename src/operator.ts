import type { Logger } from "pino";
import { NamespaceResource } from "./kube/resources.ts";
import { shortDigest } from "./util/digest.ts";
import { defaultMaxInflightPerAccount, type OperatorConfig } from "./config.ts";
import { registerControllers } from "./controller/register.ts";
import { KubeClient } from "./kube/client.ts";
import { connect, loadKubeConfig } from "./kube/connection.ts";
import { Manager, type ManagerConfig } from "./controller/manager.ts";
import { Metrics } from "./observability/metrics.ts";
import type { Clock } from "./util/clock.ts";
import type { DriverRegistry } from "./providers/pool.ts";
import type { InstanceTiming } from "./controller/cloudinstance/decision.ts";
import type { LimitPolicy } from "./providers/http/client.ts";

/** What the operator is assembled from; main, the demo and tests each supply their own. */
export interface OperatorDeps {
  logger: Logger;
  kube: KubeClient;
  metrics: Metrics;
  clock?: Clock;
  random?: () => number;
  watchTimeoutSeconds?: { min: number; max: number };
  /** Provider drivers by name (tests may narrow it); defaults to every built-in driver. */
  drivers?: DriverRegistry;
  /** Steady-state resync of each CloudInstance (drift detection). */
  resyncMs?: number;
  /** Polling of VMs in transition; tests and the demo shorten it. */
  instanceTiming?: Partial<InstanceTiming>;
  /**
   * `--allowed-endpoints` entries: where provider credentials may be sent (empty: each
   * driver's documented endpoint only).
   */
  allowedEndpoints?: readonly string[];
  /**
   * This cluster's short identity for ownership marks (clusterIdentity()); tests pass one,
   * "" leaves marks without it.
   */
  clusterID?: string;
  /** The orphan sweeper (--orphan-*); scanPeriodMs 0 (the default here) leaves it off. */
  orphans?: { scanPeriodMs: number; policy: "Report" | "Delete"; graceMs: number };
  /** The operator's own Pod, which Events about orphaned VMs are recorded on. */
  operatorPod?: { name: string; namespace: string };
  /** --max-replicas: the most CloudInstances one template may own (default 100). */
  maxReplicas?: number;
  /** How long one provider request may take in all (waits, retries, headers and body). */
  providerTimeoutMs?: number;
  /** --provider-max-response-bytes: the largest provider answer read. */
  providerMaxResponseBytes?: number;
  /** --provider-max-pages: the most pages one paginated provider list may take. */
  providerMaxPages?: number;
  /**
   * --provider-max-inflight-per-account: reconciles of one provider account running at once;
   * unset: defaultMaxInflightPerAccount(--max-concurrent-reconciles).
   */
  providerMaxInflightPerAccount?: number;
  /** --max-concurrent-reconciles, as the accounts' gates share them (set by buildOperator). */
  reconcileWorkers?: number;
  /** Provider request limits per credential: a default and per-provider overrides. */
  providerLimits?: {
    default?: Partial<LimitPolicy>;
    perProvider?: Partial<Record<string, Partial<LimitPolicy>>>;
  };
}

/** The one place the Manager is put together, so main, demo and tests run the same operator. */
export function buildOperator(config: ManagerConfig, deps: OperatorDeps): Manager {
  const mgr = new Manager({
    config,
    logger: deps.logger,
    metrics: deps.metrics,
    kube: deps.kube,
    ...(deps.clock ? { clock: deps.clock } : {}),
    ...(deps.random ? { random: deps.random } : {}),
    ...(deps.watchTimeoutSeconds ? { watchTimeoutSeconds: deps.watchTimeoutSeconds } : {}),
  });
  registerControllers(mgr, {
    ...deps,
    providerMaxInflightPerAccount:
      deps.providerMaxInflightPerAccount ?? defaultMaxInflightPerAccount(config.maxConcurrentReconciles),
    reconcileWorkers: config.maxConcurrentReconciles,
  });
  return mgr;
}

/**
 * A kube client for the configured kubeconfig/context: --kubeconfig, else KUBECONFIG, else the
 * in-cluster service account, else ~/.kube/config (controller-runtime's order).
 */
export async function connectKube(
  config: Pick<OperatorConfig, "kubeconfig" | "context" | "kubeApiRateLimit">,
  logger: Logger,
): Promise<KubeClient> {
  const connection = await connect(
    loadKubeConfig({ kubeconfig: config.kubeconfig, context: config.context }),
  );
  logger.info(
    { server: connection.server.origin, source: connection.source },
    "Kubernetes configuration loaded",
  );
  return new KubeClient({
    connection,
    logger: logger.child({ component: "kube-client" }),
    ...(config.kubeApiRateLimit ? { rateLimit: config.kubeApiRateLimit } : {}),
  });
}

export function createMetrics(): Metrics {
  return new Metrics({ processMetrics: true });
}

/**
 * A short, stable identity of the cluster: a digest of the kube-system namespace's UID (it
 * lives as long as the cluster). Ownership marks carry it, so two clusters sharing a provider
 * account never take each other's VMs for orphans. "" when it cannot be read (then marks
 * carry no cluster and the orphan sweeper stays off).
 */
export async function clusterIdentity(kube: KubeClient, logger: Logger): Promise<string> {
  try {
    const ns = await kube.get(NamespaceResource, undefined, "kube-system");
    return ns.metadata.uid === undefined ? "" : shortDigest("cluster", ns.metadata.uid).slice(0, 8);
  } catch (err) {
    logger.warn({ err }, "cannot read the kube-system namespace: ownership marks carry no cluster identity");
    return "";
  }
}
