import { parseConfig } from "../../src/config.ts";
import { buildOperator, type OperatorDeps } from "../../src/operator.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { CloudInstanceResource, InstanceTemplateResource, SecretResource } from "../../src/kube/resources.ts";
import type { CloudInstance, InstanceTemplate } from "../../src/api/index.ts";
import type { Manager } from "../../src/controller/manager.ts";
import type { DriverRegistry } from "../../src/providers/pool.ts";
import type { Driver } from "../../src/providers/driver.ts";
import { DRIVERS } from "../../src/providers/registry.ts";
import { HttpClientFactory } from "../../src/providers/http/client.ts";
import { startApi, silentLogger } from "../kube-client/harness.ts";
import { startM2sSimulator, type M2sSimulator } from "../sim/m2s/index.ts";
import { credentialsSecret, instanceManifest, SIMULATOR_ENDPOINTS, SIMULATORS } from "../sim/all.ts";
import type { SimProfile, Simulator } from "../sim/common.ts";
import { SPEC_DEFAULTS, type ProviderName } from "../../src/api/index.ts";

import { eventually } from "../kube-client/harness.ts";
import { isNotFound } from "../../src/kube/errors.ts";

export { eventually };

export const cond = (o: CloudInstance, type: string) => o.status?.conditions?.find((c) => c.type === type);
export const ready = (o: CloudInstance): boolean => cond(o, "Ready")?.status === "True";

export interface Operator {
  manager: Manager;
  metrics: Metrics;
  stop(): Promise<void>;
}

/**
 * The in-memory API server, an m2s simulator (plus the other providers' simulators asked
 * for) and a way to run the real operator against them.
 */
export async function startWorld(
  opts: { providers?: readonly Exclude<ProviderName, "m2s">[]; profile?: SimProfile } = {},
): Promise<{
  api: Awaited<ReturnType<typeof startApi>>;
  kube: KubeClient;
  m2s: M2sSimulator;
  sims: Map<ProviderName, Simulator>;
  /** A CloudInstance on one provider with its simulator's endpoint, Secret and a valid spec. */
  instanceOn(
    provider: ProviderName,
    name: string,
    spec?: Partial<CloudInstance["spec"]>,
    annotations?: Record<string, string>,
  ): Promise<CloudInstance>;
  startOperator(opts?: {
    drivers?: DriverRegistry;
    orphans?: OperatorDeps["orphans"];
    /** Extra command-line flags (after the harness's own). */
    args?: string[];
    providerLimits?: OperatorDeps["providerLimits"];
  }): Promise<Operator>;
  instance(
    name: string,
    spec?: Partial<CloudInstance["spec"]>,
    annotations?: Record<string, string>,
  ): Promise<CloudInstance>;
  get(name: string): Promise<CloudInstance>;
  /** Reads the CloudInstance until `pred` holds; returns what satisfied it. */
  waitFor(name: string, pred: (o: CloudInstance) => boolean, what: string): Promise<CloudInstance>;
  /** Waits until the CloudInstance no longer exists (finalizer removed). */
  gone(name: string): Promise<void>;
  close(): Promise<void>;
}> {
  const api = await startApi();
  const m2s = await startM2sSimulator({ faults: { transitionMs: 30 }, profile: opts.profile ?? "default" });
  const kube = api.client;
  const ns = "e2e";
  await kube.create(
    SecretResource,
    credentialsSecret({ name: "m2s-creds", namespace: ns }, m2s.credentials) as never,
  );
  const sims = new Map<ProviderName, Simulator>([["m2s", m2s]]);
  for (const provider of opts.providers ?? []) {
    const sim = await SIMULATORS[provider].start({ transitionMs: 30 }, opts.profile);
    sims.set(provider, sim);
    await kube.create(
      SecretResource,
      credentialsSecret({ name: `${provider}-creds`, namespace: ns }, sim.credentials) as never,
    );
  }
  const operators: Operator[] = [];
  return {
    api,
    kube,
    m2s,
    sims,
    async startOperator(opts = {}) {
      const outcome = parseConfig(
        [
          "--metrics-bind-address=127.0.0.1:0",
          "--health-probe-bind-address=127.0.0.1:0",
          "--metrics-secure=false",
          "--resync-period=1s",
          "--shutdown-grace-period=5s",
          "--log-level=silent",
          ...(opts.args ?? []),
        ],
        {},
      );
      if (outcome.kind !== "config") throw new Error("config");
      const client = await api.newClient();
      const metrics = new Metrics();
      const manager = buildOperator(outcome.config, {
        logger: silentLogger,
        kube: client,
        metrics,
        resyncMs: 1000,
        instanceTiming: { pollInitialMs: 20, pollMaxMs: 200 },
        allowedEndpoints: [SIMULATOR_ENDPOINTS],
        clusterID: "e2e",
        operatorPod: { name: "e2e-operator", namespace: ns },
        ...(opts.orphans ? { orphans: opts.orphans } : {}),
        ...(opts.drivers ? { drivers: opts.drivers } : {}),
        ...(opts.providerLimits ? { providerLimits: opts.providerLimits } : {}),
        providerMaxInflightPerAccount: outcome.config.providerMaxInflightPerAccount,
      });
      const ac = new AbortController();
      const run = manager.run(ac.signal);
      const op = {
        manager,
        metrics,
        async stop() {
          ac.abort();
          await run;
        },
      };
      operators.push(op);
      return op;
    },
    async instance(name, spec = {}, annotations = {}) {
      return kube.create(CloudInstanceResource, {
        apiVersion: "compute.instance-operator.dev/v1alpha1",
        kind: "CloudInstance",
        metadata: { name, namespace: ns, annotations },
        spec: {
          provider: { name: "m2s", credentialsSecretRef: { name: "m2s-creds" }, endpoint: m2s.url },
          region: "fr-par-1",
          plan: "business",
          image: "ubuntu-22.04",
          tags: ["e2e"],
          ...SPEC_DEFAULTS,
          ...spec,
        },
      });
    },
    async instanceOn(provider, name, spec = {}, annotations = {}) {
      const sim = sims.get(provider);
      if (!sim) throw new Error(`no ${provider} simulator in this world`);
      const manifest = instanceManifest(
        provider,
        { name, namespace: ns, endpoint: sim.url },
        { powerState: "Running", deletionPolicy: "Delete", updatePolicy: "Safe", ...spec },
      ) as { metadata: Record<string, unknown> };
      manifest.metadata.annotations = annotations;
      return kube.create(CloudInstanceResource, manifest as never);
    },
    async get(name) {
      return kube.get(CloudInstanceResource, ns, name);
    },
    async waitFor(name, pred, what) {
      let last: CloudInstance | undefined;
      await eventually(async () => {
        last = await kube.get(CloudInstanceResource, ns, name);
        return pred(last);
      }, `${name}: ${what}`);
      if (!last) throw new Error(`${name}: never read`);
      return last;
    },
    async gone(name) {
      await eventually(async () => {
        try {
          await kube.get(CloudInstanceResource, ns, name);
          return false;
        } catch (err) {
          return isNotFound(err);
        }
      }, `${name} deleted`);
    },
    async close() {
      for (const op of operators) await op.stop().catch(() => undefined);
      for (const sim of sims.values()) await sim.close();
      await api.close();
    },
  };
}

export type { InstanceTemplate };
export { InstanceTemplateResource, CloudInstanceResource };

/**
 * The provider's API as someone outside Kubernetes uses it (a console, a script): the same
 * driver over HTTP, with the simulator's credentials, so a test can change a VM behind the
 * operator's back. Closed after `use`.
 */
export async function outsideKubernetes<T>(
  provider: ProviderName,
  sim: Simulator,
  use: (driver: Driver<unknown>) => Promise<T>,
): Promise<T> {
  const http = new HttpClientFactory({ logger: silentLogger });
  const driver = DRIVERS[provider].create({
    credentials: sim.credentials,
    secretName: undefined,
    endpoint: sim.url,
    http,
    logger: silentLogger,
  });
  try {
    return await use(driver);
  } finally {
    await http.close();
  }
}
