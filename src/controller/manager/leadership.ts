import type { Logger } from "pino";
import type { Controller } from "../runtime/controller.ts";
import type { Informer } from "../runtime/informer.ts";
import { DEFAULT_LEASE_TIMING, LeaderElector, NotLeaderError } from "../runtime/leader-election.ts";
import { acquireAlone, type AloneOptions } from "../runtime/other-shards.ts";
import { ShardSet } from "../runtime/shard-set.ts";
import type { ShardWatch } from "../runtime/shard-watch.ts";
import { shardOf } from "../runtime/sharding.ts";
import type { KubeClient } from "../../kube/client.ts";
import { objectKey, splitKey, type AnyObject } from "../../kube/object.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { Clock } from "../../util/clock.ts";
import type { ManagerConfig } from "../manager.ts";

export interface LeadershipDeps {
  config: Pick<
    ManagerConfig,
    | "leaderElect"
    | "leaderElectionNamespace"
    | "leaderElectionId"
    | "podName"
    | "leaseDurationMs"
    | "renewDeadlineMs"
    | "retryPeriodMs"
    | "shards"
  >;
  kube: KubeClient;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  random?: (() => number) | undefined;
  /** Each controller with the cache of its own kind (the shard of a key is its object's). */
  controllers: ReadonlyMap<Controller, Informer<AnyObject>>;
  /** --shard-watch=labels: starts and stops the watch of each shard won and given up. */
  shardWatch?: (() => ShardWatch<AnyObject> | undefined) | undefined;
}

/** What `start` needs of the manager's run: when to stop, and what to do when the lease is lost. */
export interface LeadershipRun {
  /** Aborts before leadership was won: give up waiting for it. */
  signal: AbortSignal;
  /** Stop taking work (the shard set hands its shards back). */
  work: AbortSignal;
  /** Stop renewing: aborted after the work drained, so the lease outlives the in-flight reconciles. */
  leaderStop: AbortSignal;
  /** The single leader's lease was lost (not called for a shard: a shard lost is lost alone). */
  onLost: () => void;
}

/**
 * Who may act on providers, controller-runtime's leader election wiring: nobody is checked
 * without --leader-elect; one LeaderElector for a single leader; with --shards > 1 a ShardSet,
 * each shard a lease of its own and each object in the shard of `hash(uid) mod S`.
 */
export class Leadership {
  readonly #d: LeadershipDeps;
  #elector: LeaderElector | undefined;
  #shardSet: ShardSet | undefined;
  /** The lease renewals (or the shard set) running in the background after `start`. */
  #holding: Promise<unknown> | undefined;

  constructor(deps: LeadershipDeps) {
    this.#d = deps;
  }

  /** --shards: how many shards the objects are split into (1: a single leader). */
  get shards(): number {
    return this.#d.config.leaderElect ? Math.max(1, this.#d.config.shards ?? 1) : 1;
  }

  /** Holds the leader lease (sharded: at least one shard). Only meaningful with --leader-elect. */
  get isLeader(): boolean {
    if (this.shards > 1) return (this.#shardSet?.owned.length ?? 0) > 0;
    return this.#elector?.isLeader ?? false;
  }

  /** Sharded: whether this replica holds shard `shard`. */
  owns(shard: number): boolean {
    return this.#shardSet?.owns(shard) ?? false;
  }

  /** Sharded: the shards this replica holds. */
  get owned(): number[] {
    return this.#shardSet?.owned ?? [];
  }

  /** See Manager.fence. */
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

  /** The controllers' admit gate with --shards > 1: keys of held shards only, with the shard's signal. */
  admit(cache: Informer<AnyObject>, key: string): { signal?: AbortSignal | undefined } | undefined {
    const shard = this.#shardOfKey(cache, key);
    // Gone from the cache: the reconcile finds nothing to do (and any mutation is fenced).
    if (shard === undefined) return {};
    const set = this.#shardSet;
    if (!set?.owns(shard)) return undefined;
    return { signal: set.signalOf(shard) };
  }

  /**
   * Starts leader election. Sharded: the controllers run at once and take only the keys of the
   * shards held, so this returns at once. Single leader: waits for the lease; false when
   * `run.signal` aborted first (the manager then starts no controller).
   */
  async start(run: LeadershipRun): Promise<boolean> {
    const c = this.#d.config;
    if (c.leaderElect && this.shards > 1) {
      // A shard lost is lost alone (its reconciles cancelled, its fence closed).
      const shardSet = this.#newShardSet();
      this.#shardSet = shardSet;
      this.#holding = shardSet.run(run.work, run.leaderStop).catch((err: unknown) => {
        this.#d.logger.error({ err }, "shard set stopped with an error");
      });
    } else if (c.leaderElect) {
      this.#elector = this.#newElector();
      if (!(await acquireAlone(this.#elector, this.#aloneOptions(), run.signal))) return false;
      this.#holding = this.#elector.hold(run.leaderStop).then((outcome) => {
        if (outcome === "lost") run.onLost();
        return outcome;
      });
    }
    return true;
  }

  /** Resolves when the renewals started by `start` have ended (after `leaderStop` aborted). */
  async stopped(): Promise<void> {
    await this.#holding;
  }

  /** Gives the single leader's lease up, so a standby takes over without waiting it out. */
  async release(): Promise<void> {
    await this.#elector?.release();
  }

  /** The shard of a controller's key: its object's, or undefined when the cache has no such object. */
  #shardOfKey(cache: Informer<AnyObject>, key: string): number | undefined {
    const { namespace = "", name } = splitKey(key);
    const uid = cache.get(namespace, name)?.metadata.uid;
    return uid === undefined ? undefined : shardOf(uid, this.shards);
  }

  /** What every Lease holder here shares: client, namespace, identity, timing, clock, logger. */
  #leaseBase(component: string) {
    const c = this.#d.config;
    return {
      client: this.#d.kube,
      namespace: c.leaderElectionNamespace,
      identity: c.podName,
      leaseDurationMs: c.leaseDurationMs ?? DEFAULT_LEASE_TIMING.leaseDurationMs,
      renewDeadlineMs: c.renewDeadlineMs ?? DEFAULT_LEASE_TIMING.renewDeadlineMs,
      retryPeriodMs: c.retryPeriodMs ?? DEFAULT_LEASE_TIMING.retryPeriodMs,
      clock: this.#d.clock,
      logger: this.#d.logger.child({ component }),
      ...(this.#d.random ? { random: this.#d.random } : {}),
    };
  }

  #newElector(): LeaderElector {
    return new LeaderElector({
      ...this.#leaseBase("leader-election"),
      name: this.#d.config.leaderElectionId,
      metrics: this.#d.metrics,
    });
  }

  #aloneOptions(): AloneOptions {
    return { ...this.#leaseBase("leader-election"), id: this.#d.config.leaderElectionId };
  }

  #newShardSet(): ShardSet {
    return new ShardSet({
      ...this.#leaseBase("sharding"),
      id: this.#d.config.leaderElectionId,
      shards: this.shards,
      metrics: this.#d.metrics,
      // A shard is handed over only once no reconcile of its keys is in flight here.
      busy: (shard) => {
        for (const [ctrl, cache] of this.#d.controllers)
          for (const key of ctrl.inFlight) if (this.#shardOfKey(cache, key) === shard) return true;
        return false;
      },
      // A shard just won: its objects were dropped while another replica held it, so queue them all.
      onAcquired: (shard) => {
        const enqueue = (): void => {
          for (const [ctrl, cache] of this.#d.controllers)
            for (const obj of cache.list())
              if (shardOf(obj.metadata.uid ?? "", this.shards) === shard) ctrl.queue.add(objectKey(obj));
        };
        // --shard-watch=labels: the shard's objects are not cached yet; they are listed first.
        const watch = this.#d.shardWatch?.();
        if (watch) void watch.acquire(shard).then((listed) => listed && enqueue());
        else enqueue();
      },
      onReleased: (shard) => {
        void this.#d.shardWatch?.()?.release(shard);
      },
      // The label keys of another S go once no replica of it is left to write them back.
      onOthers: (alive) => {
        const watch = this.#d.shardWatch?.();
        if (watch) watch.othersGone = !alive;
      },
    });
  }
}
