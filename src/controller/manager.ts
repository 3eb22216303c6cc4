import type { Logger } from "pino";
import type { OperatorConfig } from "../config.ts";
import { stripUnread } from "./runtime/predicates.ts";
import { Controller, type Reconcile } from "./runtime/controller.ts";
import { Informer } from "./runtime/informer.ts";
import { DEFAULT_LEASE_TIMING, LeaderElector, NotLeaderError } from "./runtime/leader-election.ts";
import { ShardSet } from "./runtime/shard-set.ts";
import { shardOf } from "./runtime/sharding.ts";
import { objectKey, splitKey } from "../kube/object.ts";
import { defaultControllerRateLimiter } from "./runtime/rate-limiter.ts";
import type { IndexFunc } from "./runtime/store.ts";
import type { KubeClient } from "../kube/client.ts";
import { EventRecorder } from "../kube/events.ts";
import type { AnyObject } from "../kube/object.ts";
import type { Resource } from "../kube/resources.ts";
import type { Metrics } from "../observability/metrics.ts";
import { startProbeServer, type RunningServer } from "../observability/server.ts";
import { KubeMetricsAuthorizer } from "../observability/metrics-auth.ts";
import { metricsCertificate } from "../observability/metrics-tls.ts";
import { clockSleep } from "./runtime/backoff-manager.ts";
import { systemClock, type Clock } from "../util/clock.ts";

/** The parts of the operator config the manager reads (tests build it directly). */
export type ManagerConfig = Pick<
  OperatorConfig,
  | "namespaces"
  | "labelSelector"
  | "maxConcurrentReconciles"
  | "queueQps"
  | "queueBurst"
  | "resyncPeriodMs"
  | "leaderElect"
  | "leaderElectionNamespace"
  | "leaderElectionId"
  | "metricsBindAddress"
  | "metricsSecure"
  | "metricsCertDir"
  | "healthProbeBindAddress"
  | "podName"
  | "shutdownGracePeriodMs"
> &
  Partial<Pick<OperatorConfig, "leaseDurationMs" | "renewDeadlineMs" | "retryPeriodMs" | "shards">>;

export interface ManagerDeps {
  config: ManagerConfig;
  logger: Logger;
  metrics: Metrics;
  kube: KubeClient;
  clock?: Clock;
  random?: () => number;
  /** Reflector watch timeout range in seconds (tests shorten it); default 5–10 min. */
  watchTimeoutSeconds?: { min: number; max: number };
}

export interface CacheOptions<T> {
  indexes?: Record<string, IndexFunc<T>>;
  /**
   * Whether `--label-selector` filters this cache. Defaults to true for the operator's own
   * kinds and false for core kinds (Secrets do not carry the operator's labels).
   */
  useLabelSelector?: boolean;
  /** A selector of this cache's own, whatever `--label-selector` says (credentials Secrets opt in with a label). */
  labelSelector?: string;
}

export interface WatchSpec<U extends AnyObject> {
  resource: Resource<U>;
  /** Keys (`namespace/name`) of the controller's kind to reconcile when `obj` changes. */
  map: (obj: U) => readonly string[];
}

export interface ControllerSpec<T extends AnyObject> {
  name: string;
  for: Resource<T>;
  owns?: Resource[];
  // The watched kinds differ per entry; each entry's map is typed by its own resource.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  watches?: WatchSpec<any>[];
  reconcile: Reconcile;
  /** Filters updates of the `for` kind (e.g. specOrMetadataChanged); all updates when unset. */
  updatePredicate?: (old: T, obj: T) => boolean;
  /** Defaults to --max-concurrent-reconciles. */
  maxConcurrentReconciles?: number;
}

/**
 * Something with a lifecycle the manager owns, as controller-runtime's Runnables: it runs
 * until `signal` aborts and then returns. `needsLeader` ones run only while this replica leads.
 */
export interface Runnable {
  name: string;
  needsLeader: boolean;
  run(signal: AbortSignal): Promise<void>;
}

export class LeaderElectionLostError extends Error {
  override readonly name = "LeaderElectionLostError";
  readonly code = "ERR_LEADER_ELECTION_LOST";
}

export class ManagerStartedError extends Error {
  override readonly name = "ManagerStartedError";
  readonly code = "ERR_MANAGER_STARTED";
}

/**
 * Owns the shared caches, the controllers, leader election and the probe/metrics server,
 * and runs them in controller-runtime's order: servers, caches (wait for sync), leader
 * election, controllers. On abort: stop taking work, let in-flight reconciles finish within
 * the grace period, release the lease, stop the caches, close the servers.
 */
export class Manager {
  readonly events: EventRecorder;
  readonly #d: ManagerDeps;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #caches = new Map<string, Informer<AnyObject>>();
  readonly #controllers: Controller[] = [];
  #started = false;
  #servers: RunningServer[] = [];
  #elector: LeaderElector | undefined;
  #shardSet: ShardSet | undefined;
  /** Each controller with the cache of its own kind (the shard of a key is its object's). */
  readonly #controllerCaches = new Map<Controller, Informer<AnyObject>>();
  readonly #runnables: Runnable[] = [];
  /** Closed in reverse order after everything stopped (driver pools, HTTP agents …). */
  readonly #closers: { name: string; close: () => Promise<void> }[] = [];

  constructor(deps: ManagerDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#logger = deps.logger;
    this.events = new EventRecorder({
      client: deps.kube,
      logger: deps.logger,
      instance: deps.config.podName,
    });
  }

  /** This replica's name (--pod-name): the leader identity, and the User-Agent of its calls. */
  get identity(): string {
    return this.#d.config.podName;
  }

  get kube(): KubeClient {
    return this.#d.kube;
  }

  get logger(): Logger {
    return this.#logger;
  }

  /** The shared cache of a kind, created on first use; later calls add their indexes. */
  cache<T extends AnyObject>(resource: Resource<T>, opts: CacheOptions<T> = {}): Informer<T> {
    const id = `${resource.group}/${resource.plural}`;
    const existing = this.#caches.get(id) as Informer<T> | undefined;
    if (existing) {
      if (opts.indexes) existing.addIndexes(opts.indexes);
      return existing;
    }
    this.#assertNotStarted();
    const c = this.#d.config;
    const useSelector = opts.useLabelSelector ?? resource.group !== "";
    const informer = new Informer<T>({
      client: this.#d.kube,
      resource,
      namespaces: c.namespaces,
      labelSelector: opts.labelSelector ?? (useSelector ? c.labelSelector : undefined),
      ...(opts.indexes ? { indexes: opts.indexes } : {}),
      logger: this.#logger,
      clock: this.#clock,
      ...(this.#d.random ? { random: this.#d.random } : {}),
      // No cache-wide resync: it would reconcile every object in the same instant. Each
      // reconciler requeues its own object at --resync-period, jittered, which spreads the
      // load and honours the per-object poll-interval annotation.
      resyncMs: 0,
      transform: stripUnread,
      ...(this.#d.watchTimeoutSeconds ? { watchTimeoutSeconds: this.#d.watchTimeoutSeconds } : {}),
    });
    this.#caches.set(id, informer as unknown as Informer<AnyObject>);
    return informer;
  }

  addController<T extends AnyObject>(spec: ControllerSpec<T>): Controller {
    this.#assertNotStarted();
    const c = this.#d.config;
    const forCache = this.cache(spec.for) as unknown as Informer<AnyObject>;
    const controller = new Controller({
      name: spec.name,
      for: forCache,
      owns: (spec.owns ?? []).map((r) => this.cache(r)),
      watches: (spec.watches ?? []).map((w) => ({
        informer: this.cache(w.resource as Resource),
        map: w.map as (obj: AnyObject) => readonly string[],
      })),
      reconcile: spec.reconcile,
      updatePredicate: spec.updatePredicate as ((old: AnyObject, obj: AnyObject) => boolean) | undefined,
      maxConcurrentReconciles: spec.maxConcurrentReconciles ?? c.maxConcurrentReconciles,
      rateLimiter: defaultControllerRateLimiter(this.#clock, { qps: c.queueQps, burst: c.queueBurst }),
      logger: this.#logger,
      metrics: this.#d.metrics,
      clock: this.#clock,
      ...(this.shards > 1 ? { admit: (k: string) => this.#admit(forCache, k) } : {}),
    });
    this.#controllers.push(controller);
    this.#controllerCaches.set(controller, forCache);
    return controller;
  }

  addRunnable(r: Runnable): void {
    this.#assertNotStarted();
    this.#runnables.push(r);
  }

  /** `close` runs when the manager has stopped, after the caches and servers, last added first. */
  onStop(name: string, close: () => Promise<void>): void {
    this.#closers.push({ name, close });
  }

  /** --shards: how many shards the objects are split into (1: a single leader). */
  get shards(): number {
    return this.#d.config.leaderElect ? Math.max(1, this.#d.config.shards ?? 1) : 1;
  }

  /**
   * Throws NotLeaderError unless this replica may act on providers for the object whose UID
   * is `ownerUID` right now: with leader election, it holds an unexpired lease by its own
   * monotonic clock — the leader lease, or with --shards > 1 the lease of the object's shard
   * (`hash(uid) mod S`; shard 0 when no object is named, as for the orphan sweeper). Checked
   * immediately before every mutating provider call (fencing); reads are not fenced.
   */
  fence(ownerUID?: string): void {
    if (!this.#d.config.leaderElect) return;
    if (this.shards > 1) {
      if (!this.#shardSet) throw new NotLeaderError("no shard held yet: no provider mutation is sent");
      this.#shardSet.fence(ownerUID === undefined ? 0 : shardOf(ownerUID, this.shards));
      return;
    }
    if (!this.#elector) throw new NotLeaderError("not leading yet: no provider mutation is sent");
    this.#elector.fence();
  }

  /**
   * Whether this replica acts for shard `shard` now (always true without sharding once running
   * and leading). The orphan sweeper runs on shard 0's holder.
   */
  ownsShard(shard: number): boolean {
    if (this.shards > 1) return this.#shardSet?.owns(shard) ?? false;
    return this.isLeader;
  }

  /** Shards this replica holds (with --shards=1: [0] while leading). */
  get ownedShards(): number[] {
    if (this.shards > 1) return this.#shardSet?.owned ?? [];
    return this.isLeader ? [0] : [];
  }

  /** The shard of a controller's key: its object's, or undefined when the cache has no such object. */
  #shardOfKey(cache: Informer<AnyObject>, key: string): number | undefined {
    const { namespace = "", name } = splitKey(key);
    const uid = cache.get(namespace, name)?.metadata.uid;
    return uid === undefined ? undefined : shardOf(uid, this.shards);
  }

  #admit(cache: Informer<AnyObject>, key: string): { signal?: AbortSignal | undefined } | undefined {
    const shard = this.#shardOfKey(cache, key);
    // Gone from the cache: the reconcile finds nothing to do (and any mutation is fenced).
    if (shard === undefined) return {};
    const set = this.#shardSet;
    if (!set?.owns(shard)) return undefined;
    return { signal: set.signalOf(shard) };
  }

  /** Every cache has completed its first list. */
  hasSynced(): boolean {
    for (const c of this.#caches.values()) if (!c.hasSynced()) return false;
    return true;
  }

  /** Leading (with --shards > 1: holding at least one shard). */
  get isLeader(): boolean {
    if (!this.#d.config.leaderElect) return this.#started;
    if (this.shards > 1) return (this.#shardSet?.owned.length ?? 0) > 0;
    return this.#elector?.isLeader ?? false;
  }

  /** URLs of the running servers (after `run` started them), for tests and the demo. */
  get serverUrls(): string[] {
    return this.#servers.map((s) => s.url);
  }

  /**
   * Runs until `signal` aborts (resolves) or leadership is lost (rejects
   * LeaderElectionLostError). A SIGTERM stops new work and lets in-flight reconciles finish
   * within the grace period while the lease is still renewed; losing the lease cancels every
   * in-flight reconcile at once (their signals abort, fencing refuses mutations) and returns
   * without waiting for them to drain.
   */
  async run(signal: AbortSignal): Promise<void> {
    this.#assertNotStarted();
    this.#started = true;
    const log = this.#logger;
    const c = this.#d.config;
    const cacheStop = new AbortController();
    /** Stop taking work: SIGTERM, or leadership lost. */
    const work = new AbortController();
    /** Cancel what is in flight: grace period over, or leadership lost. */
    const cancel = new AbortController();
    const leaderStop = new AbortController();
    const stopWork = (): void => {
      work.abort();
    };
    signal.addEventListener("abort", stopWork, { once: true });
    let lost = false;
    let cacheRuns: Promise<void>[] = [];
    try {
      await this.#startServers();
      cacheRuns = [...this.#caches.values()].map((inf) =>
        inf.run(cacheStop.signal).catch((err: unknown) => {
          log.error({ err, cache: inf.resource.plural }, "cache stopped with an error");
        }),
      );
      const synced = await Promise.all([...this.#caches.values()].map((inf) => inf.waitForSync(signal)));
      if (!synced.every(Boolean) || signal.aborted) return;
      log.info({ caches: this.#caches.size }, "caches synced");

      let held: Promise<"stopped" | "lost"> | undefined;
      let shardRun: Promise<void> | undefined;
      if (c.leaderElect && this.shards > 1) {
        // Sharded: the controllers run at once and take only the keys of the shards held;
        // a shard lost is lost alone (its reconciles cancelled, its fence closed).
        const shardSet = this.#newShardSet();
        this.#shardSet = shardSet;
        shardRun = shardSet.run(work.signal, leaderStop.signal).catch((err: unknown) => {
          log.error({ err }, "shard set stopped with an error");
        });
      } else if (c.leaderElect) {
        this.#elector = this.#newElector();
        if (!(await this.#elector.acquire(signal))) return;
        held = this.#elector.hold(leaderStop.signal).then((outcome) => {
          if (outcome === "lost") {
            lost = true;
            work.abort();
            cancel.abort();
          }
          return outcome;
        });
      }

      const runs = [
        ...this.#controllers.map((ctrl) =>
          ctrl.run(work.signal, cancel.signal).catch((err: unknown) => {
            log.error({ err, controller: ctrl.name }, "controller stopped with an error");
          }),
        ),
        ...this.#runnables.map((r) =>
          r.run(work.signal).catch((err: unknown) => {
            log.error({ err, runnable: r.name }, "runnable stopped with an error");
          }),
        ),
      ];
      await aborted(work.signal);
      if (lost) {
        log.error("leadership lost: in-flight reconciles cancelled, stopping");
        // Their signals are aborted: they end at their next await. Not waited on for long.
        await Promise.race([Promise.all(runs), clockSleep(this.#clock, 1_000)]);
      } else {
        log.info("shutting down: draining in-flight reconciles (the lease is still renewed)");
        await this.#drain(runs, cancel, c.shutdownGracePeriodMs);
      }
      leaderStop.abort();
      await held;
      await shardRun;
    } finally {
      signal.removeEventListener("abort", stopWork);
      work.abort();
      cancel.abort();
      leaderStop.abort();
      if (!lost) await this.#elector?.release();
      cacheStop.abort();
      await Promise.all(cacheRuns);
      // Events are best-effort: an unreachable API server must not hold the shutdown.
      const flushed = new AbortController();
      await Promise.race([
        this.events.flush().finally(() => {
          flushed.abort();
        }),
        // After a lost lease the API server is likely out of reach: do not wait long for it.
        clockSleep(this.#clock, lost ? 300 : 5_000, flushed.signal),
      ]);
      this.events.close();
      await Promise.all(this.#servers.map((s) => s.close()));
      this.#servers = [];
      for (const closer of [...this.#closers].reverse())
        await closer.close().catch((err: unknown) => {
          log.warn({ err, closer: closer.name }, "closing failed");
        });
      log.info("manager stopped");
    }
    if (lost) throw new LeaderElectionLostError("leader election lost");
  }

  #newElector(): LeaderElector {
    const c = this.#d.config;
    return new LeaderElector({
      client: this.#d.kube,
      namespace: c.leaderElectionNamespace,
      name: c.leaderElectionId,
      identity: c.podName,
      leaseDurationMs: c.leaseDurationMs ?? DEFAULT_LEASE_TIMING.leaseDurationMs,
      renewDeadlineMs: c.renewDeadlineMs ?? DEFAULT_LEASE_TIMING.renewDeadlineMs,
      retryPeriodMs: c.retryPeriodMs ?? DEFAULT_LEASE_TIMING.retryPeriodMs,
      clock: this.#clock,
      logger: this.#logger.child({ component: "leader-election" }),
      metrics: this.#d.metrics,
      ...(this.#d.random ? { random: this.#d.random } : {}),
    });
  }

  #newShardSet(): ShardSet {
    const c = this.#d.config;
    return new ShardSet({
      client: this.#d.kube,
      namespace: c.leaderElectionNamespace,
      id: c.leaderElectionId,
      identity: c.podName,
      shards: this.shards,
      leaseDurationMs: c.leaseDurationMs ?? DEFAULT_LEASE_TIMING.leaseDurationMs,
      renewDeadlineMs: c.renewDeadlineMs ?? DEFAULT_LEASE_TIMING.renewDeadlineMs,
      retryPeriodMs: c.retryPeriodMs ?? DEFAULT_LEASE_TIMING.retryPeriodMs,
      clock: this.#clock,
      logger: this.#logger.child({ component: "sharding" }),
      metrics: this.#d.metrics,
      ...(this.#d.random ? { random: this.#d.random } : {}),
      busy: (shard) => {
        for (const [ctrl, cache] of this.#controllerCaches)
          for (const key of ctrl.inFlight) if (this.#shardOfKey(cache, key) === shard) return true;
        return false;
      },
      onAcquired: (shard) => {
        for (const [ctrl, cache] of this.#controllerCaches)
          for (const obj of cache.list())
            if (shardOf(obj.metadata.uid ?? "", this.shards) === shard) ctrl.queue.add(objectKey(obj));
      },
    });
  }

  async #drain(runs: Promise<void>[], hardStop: AbortController, graceMs: number): Promise<void> {
    const graceOver = new AbortController();
    const finished = Promise.all(runs).then(() => true);
    const timedOut = clockSleep(this.#clock, graceMs, graceOver.signal).then(() => false);
    const inTime = await Promise.race([finished, timedOut]);
    graceOver.abort();
    if (!inTime) {
      this.#logger.warn({ graceMs }, "grace period over: cancelling in-flight reconciles");
      hardStop.abort();
    }
  }

  async #startServers(): Promise<void> {
    const c = this.#d.config;
    const probes = {
      healthz: () => ({ ok: true, detail: "" }),
      readyz: () => {
        const pending = [...this.#caches.values()]
          .filter((i) => !i.hasSynced())
          .map((i) => i.resource.plural);
        return { ok: pending.length === 0, detail: `caches not synced: ${pending.join(", ")}` };
      },
    };
    const registry = this.#d.metrics.registry;
    if (c.metricsBindAddress === c.healthProbeBindAddress) {
      // Plain HTTP on loopback only (config refuses the rest), for tests and the demo.
      const s = await startProbeServer({ address: c.metricsBindAddress, registry, probes });
      if (s) this.#servers.push(s);
      return;
    }
    const m = await startProbeServer({
      address: c.metricsBindAddress,
      registry,
      ...(c.metricsSecure
        ? {
            tls: metricsCertificate(c.metricsCertDir),
            authorizer: new KubeMetricsAuthorizer({ kube: this.#d.kube }),
          }
        : {}),
    });
    if (m) this.#servers.push(m);
    const h = await startProbeServer({ address: c.healthProbeBindAddress, probes });
    if (h) this.#servers.push(h);
  }

  #assertNotStarted(): void {
    if (this.#started)
      throw new ManagerStartedError(
        "the manager is already running: register caches and controllers before run()",
      );
  }
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
