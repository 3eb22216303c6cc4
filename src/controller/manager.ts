import type { Logger } from "pino";
import type { ShardWatchMode } from "./runtime/shard-watch.ts";
import type { OperatorConfig } from "../config.ts";
import type { Controller } from "./runtime/controller.ts";
import type { Informer } from "./runtime/informer.ts";
import { clockSleep } from "./runtime/backoff-manager.ts";
import type { KubeClient } from "../kube/client.ts";
import { EventRecorder } from "../kube/events.ts";
import type { AnyObject } from "../kube/object.ts";
import type { Resource } from "../kube/resources.ts";
import type { Metrics } from "../observability/metrics.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import { CacheSet, type CacheOptions } from "./manager/caches.ts";
import { newController, type ControllerSpec } from "./manager/controllers.ts";
import { Leadership } from "./manager/leadership.ts";
import { aborted, drain, RunStops, startRunnables, type Runnable } from "./manager/runnables.ts";
import { ServerSet } from "./manager/servers.ts";

export type { CacheOptions } from "./manager/caches.ts";
export type { ControllerSpec, WatchSpec } from "./manager/controllers.ts";
export type { Runnable } from "./manager/runnables.ts";

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
  Partial<
    Pick<OperatorConfig, "leaseDurationMs" | "renewDeadlineMs" | "retryPeriodMs" | "shards" | "shardWatch">
  >;

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
  readonly #caches: CacheSet;
  /** Each controller with the cache of its own kind (the shard of a key is its object's). */
  readonly #controllers = new Map<Controller, Informer<AnyObject>>();
  readonly #leadership: Leadership;
  readonly #servers: ServerSet;
  #started = false;
  readonly #runnables: Runnable[] = [];
  /** Closed in reverse order after everything stopped (driver pools, HTTP agents …). */
  readonly #closers: { name: string; close: () => Promise<void> }[] = [];

  constructor(deps: ManagerDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#logger = deps.logger;
    const shared = { kube: deps.kube, logger: deps.logger, clock: this.#clock, random: deps.random };
    this.events = new EventRecorder({
      client: deps.kube,
      logger: deps.logger,
      instance: deps.config.podName,
    });
    this.#caches = new CacheSet({
      ...shared,
      config: deps.config,
      watchTimeoutSeconds: deps.watchTimeoutSeconds,
      // Decided from the config: the leadership (which knows the shards) is made below.
      shardWatch:
        deps.config.leaderElect && (deps.config.shards ?? 1) > 1 && deps.config.shardWatch === "labels"
          ? { shards: deps.config.shards ?? 1 }
          : undefined,
    });
    this.#leadership = new Leadership({
      ...shared,
      config: deps.config,
      metrics: deps.metrics,
      controllers: this.#controllers,
      shardWatch: () => this.#caches.shardWatch,
    });
    this.#servers = new ServerSet({
      config: deps.config,
      metrics: deps.metrics,
      kube: deps.kube,
      pendingCaches: () => this.#caches.pending(),
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
    const existing = this.#caches.get(resource, opts.name);
    if (existing) {
      if (opts.indexes) existing.addIndexes(opts.indexes);
      return existing;
    }
    this.#assertNotStarted();
    return this.#caches.add(resource, opts);
  }

  addController<T extends AnyObject>(spec: ControllerSpec<T>): Controller {
    this.#assertNotStarted();
    const forCache = this.cache(spec.for) as unknown as Informer<AnyObject>;
    const controller = newController(spec, forCache, {
      config: this.#d.config,
      logger: this.#logger,
      metrics: this.#d.metrics,
      clock: this.#clock,
      cache: (r, name) => this.cache(r, name === undefined ? {} : { name }),
      ...(this.shards > 1 ? { admit: (k: string) => this.#leadership.admit(forCache, k) } : {}),
    });
    this.#controllers.set(controller, forCache);
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

  /** --shard-watch: `labels` only counts with --shards above 1 (and leader election). */
  get shardWatch(): ShardWatchMode {
    return this.shards > 1 ? (this.#d.config.shardWatch ?? "all") : "all";
  }

  /** Every object of a kind in the caches' scope, listed from the API server (see CacheSet.listAll). */
  listAll<T extends AnyObject>(
    resource: Resource<T>,
    opts: { namespace?: string; signal: AbortSignal },
  ): Promise<T[]> {
    return this.#caches.listAll(resource, opts);
  }

  /** --shards: how many shards the objects are split into (1: a single leader). */
  get shards(): number {
    return this.#leadership.shards;
  }

  /**
   * Throws NotLeaderError unless this replica may act on providers for the object whose UID
   * is `ownerUID` right now: with leader election, it holds an unexpired lease by its own
   * monotonic clock — the leader lease, or with --shards > 1 the lease of the object's shard
   * (`hash(uid) mod S`; shard 0 when no object is named, as for the orphan sweeper). Checked
   * immediately before every mutating provider call (fencing); reads are not fenced.
   */
  fence(ownerUID?: string): void {
    this.#leadership.fence(ownerUID);
  }

  /**
   * Whether this replica acts for shard `shard` now (always true without sharding once running
   * and leading). The orphan sweeper runs on shard 0's holder.
   */
  ownsShard(shard: number): boolean {
    if (this.shards > 1) return this.#leadership.owns(shard);
    return this.isLeader;
  }

  /** Shards this replica holds (with --shards=1: [0] while leading). */
  get ownedShards(): number[] {
    if (this.shards > 1) return this.#leadership.owned;
    return this.isLeader ? [0] : [];
  }

  /** Every cache has completed its first list. */
  hasSynced(): boolean {
    return this.#caches.hasSynced();
  }

  /** Leading (with --shards > 1: holding at least one shard). */
  get isLeader(): boolean {
    if (!this.#d.config.leaderElect) return this.#started;
    return this.#leadership.isLeader;
  }

  /** URLs of the running servers (after `run` started them), for tests and the demo. */
  get serverUrls(): string[] {
    return this.#servers.urls;
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
    const stops = new RunStops();
    const stopWork = (): void => {
      stops.work.abort();
    };
    signal.addEventListener("abort", stopWork, { once: true });
    try {
      await this.#servers.start();
      this.#caches.start();
      if (!(await this.#caches.waitForSync(signal))) return;
      this.#logger.info({ caches: this.#caches.size }, "caches synced");
      const leading = await this.#leadership.start({
        signal,
        work: stops.work.signal,
        leaderStop: stops.leader.signal,
        onLost: () => {
          stops.loseLeadership();
        },
      });
      if (!leading) return;
      const runs = startRunnables(this.#controllers.keys(), this.#runnables, stops, this.#logger);
      await aborted(stops.work.signal);
      await this.#stopWork(runs, stops);
      stops.leader.abort();
      await this.#leadership.stopped();
    } finally {
      signal.removeEventListener("abort", stopWork);
      await this.#shutdown(stops);
    }
    if (stops.lost) throw new LeaderElectionLostError("leader election lost");
  }

  /** Lets the controllers and runnables end: drained within the grace period, or cut short on a lost lease. */
  async #stopWork(runs: Promise<void>[], stops: RunStops): Promise<void> {
    if (stops.lost) {
      this.#logger.error("leadership lost: in-flight reconciles cancelled, stopping");
      // Their signals are aborted: they end at their next await. Not waited on for long.
      await Promise.race([Promise.all(runs), clockSleep(this.#clock, 1_000)]);
      return;
    }
    this.#logger.info("shutting down: draining in-flight reconciles (the lease is still renewed)");
    await drain(runs, stops.cancel, this.#d.config.shutdownGracePeriodMs, this.#clock, this.#logger);
  }

  /** Everything `run` started, stopped in reverse: lease, caches, events, servers, closers. */
  async #shutdown(stops: RunStops): Promise<void> {
    stops.abortAll();
    if (!stops.lost) await this.#leadership.release();
    await this.#caches.stop();
    await this.#flushEvents(stops.lost);
    await this.#servers.close();
    for (const closer of [...this.#closers].reverse())
      await closer.close().catch((err: unknown) => {
        this.#logger.warn({ err, closer: closer.name }, "closing failed");
      });
    this.#logger.info("manager stopped");
  }

  /** Events are best-effort: an unreachable API server must not hold the shutdown. */
  async #flushEvents(lost: boolean): Promise<void> {
    const flushed = new AbortController();
    await Promise.race([
      this.events.flush().finally(() => {
        flushed.abort();
      }),
      // After a lost lease the API server is likely out of reach: do not wait long for it.
      clockSleep(this.#clock, lost ? 300 : 5_000, flushed.signal),
    ]);
    this.events.close();
  }

  #assertNotStarted(): void {
    if (this.#started)
      throw new ManagerStartedError(
        "the manager is already running: register caches and controllers before run()",
      );
  }
}
