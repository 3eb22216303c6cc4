import type { Manager } from "./manager.ts";
import type { Controller } from "./runtime/controller.ts";
import type { OperatorDeps } from "../operator.ts";
import type { CloudInstance, InstanceTemplate } from "../api/index.ts";
import { CloudInstanceResource, InstanceTemplateResource, SecretResource } from "../kube/resources.ts";
import { LABEL_TEMPLATE } from "../api/index.ts";
import { KubeObjectWriter } from "../kube/writer.ts";
import type { Secret } from "./ports.ts";
import { HttpClientFactory } from "../providers/http/client.ts";
import { specOrMetadataChanged } from "./runtime/predicates.ts";
import { DriverPool } from "../providers/pool.ts";
import { EndpointPolicy } from "../providers/endpoint-policy.ts";
import { shortDigest } from "../util/digest.ts";
import { isNotFound } from "../kube/errors.ts";
import { CREDENTIALS_SELECTOR, openDriver, type ProviderAccessDeps } from "./provider-access.ts";
import { OrphanSweeper } from "./orphans.ts";
import { systemClock } from "../util/clock.ts";
import type { Driver } from "../providers/driver.ts";
import { ConnectionSecrets, type ConnectionSecretStore } from "./cloudinstance/connection-secret.ts";
import { DRIVERS } from "../providers/registry.ts";
import { DEFAULT_INSTANCE_TIMING, InstanceReconciler } from "./cloudinstance/reconciler.ts";
import { TemplateReconciler } from "./instancetemplate/reconciler.ts";
import { trackInstancePhases } from "./instance-metrics.ts";

const key = (namespace: string | undefined, name: string | undefined): string =>
  `${namespace ?? ""}/${name ?? ""}`;

type Caches = ReturnType<typeof registerCaches>;

/**
 * Registers the CloudInstance and InstanceTemplate controllers and the caches they read.
 * Secrets and templates are watch-mapped onto the instances that use them, so a missing
 * Secret or template is retried the moment it appears, not by polling.
 */
export function registerControllers(mgr: Manager, deps: OperatorDeps): void {
  const endpoints = new EndpointPolicy(
    deps.allowedEndpoints ?? [],
    Object.values(deps.drivers ?? DRIVERS).map((f) => f.defaultEndpoint),
  );
  const { http, drivers } = providerClients(mgr, deps, endpoints);
  const caches = registerCaches(mgr);
  const secretStore = uncachedSecrets(mgr);
  const access: ProviderAccessDeps = {
    drivers,
    endpoints,
    secrets: caches.secrets,
    secretExists: async (namespace, name) => (await secretStore.get(namespace, name)) !== undefined,
  };
  trackInstancePhases(caches.instances, deps.metrics);
  addInstanceController(mgr, deps, caches, access, secretStore);
  addTemplateController(mgr, deps, caches, access);
  addOrphanSweeper(mgr, deps, caches, access);
  // The manager closes them once everything that could use them has stopped.
  mgr.onStop("provider drivers and HTTP agents", async () => {
    await drivers.close();
    await http.close();
  });
}

/** The shared HTTP layer and the driver pool over it (one driver per account). */
function providerClients(
  mgr: Manager,
  deps: OperatorDeps,
  endpoints: EndpointPolicy,
): { http: HttpClientFactory; drivers: DriverPool } {
  const http = new HttpClientFactory({
    // The policy allowed a name; what it resolves to is checked again when a connection opens.
    resolvedAddresses: endpoints,
    logger: deps.logger,
    userAgent: `cloud-instance-operator (${mgr.identity})`,
    metrics: deps.metrics,
    ...(deps.providerLimits?.default ? { defaultLimits: deps.providerLimits.default } : {}),
    ...(deps.providerLimits?.perProvider ? { limits: deps.providerLimits.perProvider } : {}),
    ...(deps.providerTimeoutMs === undefined ? {} : { requestTimeoutMs: deps.providerTimeoutMs }),
    ...(deps.providerMaxResponseBytes === undefined
      ? {}
      : { maxResponseBytes: deps.providerMaxResponseBytes }),
  });
  const drivers = new DriverPool({
    registry: deps.drivers ?? DRIVERS,
    http,
    logger: deps.logger,
    ...(deps.providerMaxPages === undefined ? {} : { maxPages: deps.providerMaxPages }),
    ...(deps.providerMaxInflightPerAccount === undefined
      ? {}
      : { maxInFlightPerAccount: deps.providerMaxInflightPerAccount }),
    ...(deps.reconcileWorkers === undefined ? {} : { workers: deps.reconcileWorkers }),
    onBalance: (provider, account, balance) => {
      deps.metrics.providerBalance.set({ provider, account_digest: shortDigest(provider, account) }, balance);
    },
  });
  return { http, drivers };
}

const byTemplate = (o: CloudInstance): string[] =>
  o.spec.templateRef ? [key(o.metadata.namespace, o.spec.templateRef.name)] : [];

function registerCaches(mgr: Manager) {
  const instances = mgr.cache(CloudInstanceResource, {
    // --shard-watch=labels: only the CloudInstances of the shards this replica holds.
    shardWatched: true,
    indexes: {
      byTemplate,
      bySecret: (o: CloudInstance) =>
        o.spec.provider?.credentialsSecretRef
          ? [key(o.metadata.namespace, o.spec.provider.credentialsSecretRef.name)]
          : [],
    },
  });
  // A template on one shard owns instances on every shard: with --shard-watch=labels its
  // controller reads the instances made by templates (they carry the template label) from a
  // cache of their own, complete whatever the shards held.
  const templated =
    mgr.shardWatch === "labels"
      ? mgr.cache(CloudInstanceResource, {
          name: "templated",
          addLabelSelector: LABEL_TEMPLATE,
          indexes: { byTemplate },
        })
      : instances;
  const templates = mgr.cache(InstanceTemplateResource, {
    indexes: {
      bySecret: (t: InstanceTemplate) =>
        t.spec.provider?.credentialsSecretRef
          ? [key(t.metadata.namespace, t.spec.provider.credentialsSecretRef.name)]
          : [],
    },
  });
  // Only Secrets that opt in as credentials are listed and watched: a cluster's other Secrets
  // (Helm releases, service-account tokens, TLS keys) are never held in this process.
  const secrets = mgr.cache(SecretResource, { labelSelector: CREDENTIALS_SELECTOR });
  return { instances, templated, templates, secrets };
}

/**
 * Secrets the operator reads beyond the labelled credentials (existence checks, connection
 * Secrets) go to the API server each time: they are never cached.
 */
function uncachedSecrets(mgr: Manager): ConnectionSecretStore {
  return {
    get: async (namespace, name) => {
      try {
        return await mgr.kube.get(SecretResource, namespace, name);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    create: async (secret) => {
      await mgr.kube.create(SecretResource, secret);
    },
    update: async (secret) => {
      await mgr.kube.update(SecretResource, secret);
    },
    delete: async (namespace, name) => {
      try {
        await mgr.kube.delete(SecretResource, namespace, name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}

const instancesOfTemplate =
  (caches: Caches) =>
  (t: InstanceTemplate): string[] =>
    caches.instances
      .byIndex("byTemplate", key(t.metadata.namespace, t.metadata.name))
      .map((i) => key(i.metadata.namespace, i.metadata.name));

/**
 * The CloudInstances that name a template, for its controller. With --shard-watch=labels the
 * instances it made come from the templated cache (every shard), and the ones users made that
 * name it from the shards held; a template being deleted reads them all from the API server
 * (`referencingLive`), so an instance on another shard still holds the deletion.
 */
function referencingOf(mgr: Manager, caches: Caches) {
  const { instances, templated } = caches;
  const referencing = (ns: string, name: string): CloudInstance[] => {
    const k = key(ns, name);
    if (templated === instances) return instances.byIndex("byTemplate", k);
    const out = templated.byIndex("byTemplate", k);
    const seen = new Set(out.map((i) => i.metadata.uid));
    for (const i of instances.byIndex("byTemplate", k)) if (!seen.has(i.metadata.uid)) out.push(i);
    return out;
  };
  if (templated === instances) return { referencing };
  const referencingLive = async (ns: string, name: string, signal: AbortSignal): Promise<CloudInstance[]> =>
    (await mgr.listAll(CloudInstanceResource, { namespace: ns, signal })).filter(
      (i) => i.spec.templateRef?.name === name,
    );
  return { referencing, referencingLive };
}

function addInstanceController(
  mgr: Manager,
  deps: OperatorDeps,
  caches: Caches,
  access: ProviderAccessDeps,
  secretStore: ConnectionSecretStore,
): void {
  const { instances, templates } = caches;
  // Set below: the gate's wake-ups go to the controller's queue.
  const instanceController: { current?: Controller } = {};
  const reconciler = new InstanceReconciler({
    instances,
    templates,
    access,
    writer: new KubeObjectWriter<CloudInstance, NonNullable<CloudInstance["status"]>>(
      mgr.kube,
      CloudInstanceResource,
    ),
    connections: new ConnectionSecrets(secretStore),
    clusterID: deps.clusterID ?? "",
    fence: (ownerUID) => {
      mgr.fence(ownerUID);
    },
    events: mgr.events,
    logger: deps.logger,
    timing: {
      ...DEFAULT_INSTANCE_TIMING,
      resyncMs: deps.resyncMs ?? DEFAULT_INSTANCE_TIMING.resyncMs,
      ...deps.instanceTiming,
    },
    ...(deps.random ? { random: deps.random } : {}),
    onThrottled: (provider, reason) => {
      deps.metrics.providerThrottled.inc({ provider, reason });
    },
    // An earlier due time replaces the key's pending requeue: no second reconcile later.
    wake: (k) => instanceController.current?.queue.addAfter(k, 1),
  });
  const ofTemplate = instancesOfTemplate(caches);
  instanceController.current = mgr.addController({
    name: "cloudinstance",
    for: CloudInstanceResource,
    updatePredicate: specOrMetadataChanged,
    watches: [
      { resource: InstanceTemplateResource, map: ofTemplate },
      {
        resource: SecretResource,
        map: (s: Secret) => {
          const k = key(s.metadata.namespace, s.metadata.name);
          const direct = instances
            .byIndex("bySecret", k)
            .map((i) => key(i.metadata.namespace, i.metadata.name));
          return [...direct, ...templates.byIndex("bySecret", k).flatMap(ofTemplate)];
        },
      },
    ],
    reconcile: (_key, ctx) => reconciler.reconcile(ctx.namespace, ctx.name, ctx.signal),
  });
}

function addTemplateController(
  mgr: Manager,
  deps: OperatorDeps,
  caches: Caches,
  access: ProviderAccessDeps,
): void {
  const { templated, templates } = caches;
  const reconciler = new TemplateReconciler({
    templates,
    access,
    ...referencingOf(mgr, caches),
    templateWriter: new KubeObjectWriter<InstanceTemplate, NonNullable<InstanceTemplate["status"]>>(
      mgr.kube,
      InstanceTemplateResource,
    ),
    instanceWriter: new KubeObjectWriter<CloudInstance, NonNullable<CloudInstance["status"]>>(
      mgr.kube,
      CloudInstanceResource,
    ),
    events: mgr.events,
    logger: deps.logger,
    resyncMs: deps.resyncMs ?? DEFAULT_INSTANCE_TIMING.resyncMs,
    maxReplicas: deps.maxReplicas ?? 100,
    fence: (ownerUID) => {
      mgr.fence(ownerUID);
    },
  });
  mgr.addController({
    name: "instancetemplate",
    for: InstanceTemplateResource,
    updatePredicate: specOrMetadataChanged,
    // The instances it made, from the cache that holds all of them (owned ones name the
    // template in spec.templateRef too, so the watch below covers ownership).
    ...(templated === caches.instances ? { owns: [CloudInstanceResource] } : {}),
    watches: [
      {
        resource: CloudInstanceResource,
        ...(templated === caches.instances ? {} : { cache: "templated" }),
        map: (i: CloudInstance) =>
          i.spec.templateRef ? [key(i.metadata.namespace, i.spec.templateRef.name)] : [],
      },
      {
        resource: SecretResource,
        map: (s: Secret) =>
          templates
            .byIndex("bySecret", key(s.metadata.namespace, s.metadata.name))
            .map((t) => key(t.metadata.namespace, t.metadata.name)),
      },
    ],
    reconcile: (_key, ctx) => reconciler.reconcile(ctx.namespace, ctx.name, ctx.signal),
  });
}

function addOrphanSweeper(
  mgr: Manager,
  deps: OperatorDeps,
  caches: Caches,
  access: ProviderAccessDeps,
): void {
  const sweep = deps.orphans;
  if (sweep === undefined || sweep.scanPeriodMs <= 0) return;
  const { instances, templates } = caches;
  mgr.addRunnable(
    new OrphanSweeper({
      // Before calling a VM orphaned the sweeper must know every owner that exists: with
      // --shard-watch=labels the cache holds this replica's shards only, so it lists them all.
      instances:
        mgr.shardWatch === "labels"
          ? (signal) => mgr.listAll(CloudInstanceResource, { signal })
          : () => instances.list(),
      accounts: (objects) => accountsInUse(access, objects, (ns, name) => templates.get(ns, name)),
      clusterID: deps.clusterID ?? "",
      periodMs: sweep.scanPeriodMs,
      policy: sweep.policy,
      graceMs: sweep.graceMs,
      reportOn: deps.operatorPod
        ? { apiVersion: "v1", kind: "Pod", metadata: { ...deps.operatorPod } }
        : undefined,
      events: mgr.events,
      metrics: deps.metrics,
      logger: deps.logger.child({ component: "orphan-sweeper" }),
      clock: deps.clock ?? systemClock,
      // Shard 0's holder sweeps (with one shard: the leader).
      fence: () => {
        mgr.fence();
      },
      active: () => mgr.ownsShard(0),
      ...(deps.random ? { random: deps.random } : {}),
    }),
  );
}

/**
 * The accounts to scan for orphans: those the live objects name (opened through the endpoint
 * policy and labelled credentials, so a restarted operator knows them), and every account the
 * driver pool still holds (an account's last object may be the one that vanished). An object
 * whose Secret or endpoint is refused is skipped; its own reconcile says why.
 */
async function accountsInUse(
  access: ProviderAccessDeps,
  objects: readonly CloudInstance[],
  template: (namespace: string, name: string) => InstanceTemplate | undefined,
): Promise<{ driver: Driver<unknown>; account: string }[]> {
  for (const o of objects) {
    const ns = o.metadata.namespace ?? "";
    const ref = o.spec.templateRef?.name;
    const provider = o.spec.provider ?? (ref === undefined ? undefined : template(ns, ref)?.spec.provider);
    if (provider === undefined) continue;
    await openDriver(access, ns, provider).catch(() => undefined);
  }
  return access.drivers.accounts();
}
