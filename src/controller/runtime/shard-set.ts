import { LeaseResource } from "../../kube/resources.ts";
import { sleep } from "../../util/clock.ts";
import { LeaderElector, NotLeaderError, type LeaderElectionOptions } from "./leader-election.ts";
import { deleteDead, OtherShards, SHARDS_ANNOTATION } from "./other-shards.ts";
import { memberLeaseName, planShards, shardLeaseName, shardOfLeaseName, type ShardPlan } from "./sharding.ts";

/** Each shard's Lease is held as the leader's is, with the same timing, clock and identity. */
export interface ShardSetOptions extends Omit<LeaderElectionOptions, "name"> {
  /** --leader-election-id: the shard Leases are `<id>-shard-<i>`, the members' `<id>-member-<identity>`. */
  id: string;
  shards: number;
  /** Whether work of shard `i` is in flight: a graceful hand-back waits for it to end. */
  busy: (shard: number) => boolean;
  /** Shard `i` was acquired: its objects' keys are enqueued. */
  onAcquired: (shard: number) => void;
  /** Shard `i` is no longer held (lost, handed back, given up, or released on shutdown). */
  onReleased?: (shard: number) => void;
  /** Every period: whether a live replica of another --shards was seen. */
  onOthers?: (alive: boolean) => void;
}

interface Tenure {
  elector: LeaderElector;
  /** Stops the renewals (hand-back, shutdown). */
  stopHold: AbortController;
  /** Aborts the shard's in-flight reconciles (lease lost, hand-back past its wait). */
  cancel: AbortController;
  releasing: boolean;
  done: Promise<void>;
}

/**
 * Hash sharding over S coordination.k8s.io Leases, one LeaderElector per shard (the same
 * monotonic-clock algorithm and fencing as the single leader), plus one membership Lease per
 * replica so that a replica holding nothing yet is counted. Every retry period it lists the
 * namespace's Leases once, feeds each shard's elector what it saw, and applies the fair-share
 * rule of `planShards`: acquire free shards up to its share, hand surplus ones back when
 * replicas joined (graceful: stop taking the shard's keys, let its in-flight reconciles end,
 * then release the Lease so the newcomer takes it at once). A shard whose renewal fails is
 * lost alone: its in-flight reconciles are cancelled and its fence refuses, the others go on.
 */
export class ShardSet {
  readonly #o: ShardSetOptions;
  readonly #random: () => number;
  readonly #electors: LeaderElector[];
  readonly #tenures = new Map<number, Tenure>();
  readonly #handoffs = new Set<Promise<void>>();
  #memberElector: LeaderElector | undefined;
  #lastPlan: ShardPlan | undefined;
  /**
   * The id's leader and membership Leases as last listed, each judged live by when its record
   * was first seen unchanged: the members counted for the fair share, and the replicas of
   * another --shards (or a single leader) — while any lives, take nothing.
   */
  readonly #roster: OtherShards;
  #waitingFor = "";

  constructor(opts: ShardSetOptions) {
    this.#o = opts;
    this.#random = opts.random ?? Math.random;
    this.#electors = Array.from({ length: opts.shards }, (_, i) =>
      this.#newElector(shardLeaseName(opts.id, i)),
    );
    this.#roster = new OtherShards({ ...opts, minDurationMs: opts.leaseDurationMs });
    // The configured S, exported so that an alert can tell a shard nobody holds (the sum of
    // every replica's cloud_instance_shards_owned below it) without knowing the flags.
    opts.metrics?.shards.set(opts.shards);
  }

  /** Shards this replica holds and reconciles (not the ones being handed back). */
  get owned(): number[] {
    return [...this.#tenures]
      .filter(([, t]) => !t.releasing && t.elector.isLeader)
      .map(([i]) => i)
      .sort((a, b) => a - b);
  }

  /** The last fair-share decision (for logs, tests and the status metric). */
  get lastPlan(): ShardPlan | undefined {
    return this.#lastPlan;
  }

  /** Whether this replica reconciles shard `i`'s objects now. */
  owns(shard: number): boolean {
    const t = this.#tenures.get(shard);
    return t !== undefined && !t.releasing && t.elector.isLeader;
  }

  /** Aborts when shard `i` is lost or handed back: the reconciles of its objects stop on it. */
  signalOf(shard: number): AbortSignal | undefined {
    return this.#tenures.get(shard)?.cancel.signal;
  }

  /**
   * Throws NotLeaderError unless this replica holds shard `i`'s Lease by its own monotonic
   * clock (the leader's fencing rule, per shard). A shard being handed back is still fenced by
   * its Lease: its last in-flight reconciles may finish their calls before the release.
   */
  fence(shard: number): void {
    const t = this.#tenures.get(shard);
    if (!t)
      throw new NotLeaderError(
        `this replica does not hold shard ${String(shard)}: no provider mutation is sent`,
      );
    t.elector.fence();
  }

  /**
   * Runs until `stop` aborts: the membership Lease, the fair-share loop (until `acquireStop`
   * aborts: a replica shutting down takes no new shard while it drains) and the renewals.
   * On `stop` every shard Lease and the membership Lease are released.
   */
  async run(acquireStop: AbortSignal, stop: AbortSignal): Promise<void> {
    const o = this.#o;
    const membership = this.#membership(stop);
    try {
      while (!stop.aborted) {
        if (!acquireStop.aborted) {
          try {
            await this.#tick(stop);
          } catch (err) {
            if (!stop.aborted) o.logger.warn({ err }, "shard balancing failed; trying again next period");
          }
        }
        await sleep(this.#jittered(), stop, o.clock);
      }
    } finally {
      // Stopping: the manager drained the reconciles already; the Leases go to the others at once.
      for (const t of this.#tenures.values()) t.stopHold.abort();
      await Promise.all(this.#handoffs);
      await Promise.all(
        [...this.#tenures].map(async ([i, t]) => {
          await t.done;
          await t.elector.release();
          this.#tenures.delete(i);
          this.#released(i);
        }),
      );
      this.#updateMetrics();
      await membership;
      // A replica that stops for good leaves no membership Lease behind (pod names change with
      // every rollout); one that only restarts recreates it.
      if (this.#memberElector?.isLeader === true)
        await o.client
          .delete(LeaseResource, o.namespace, memberLeaseName(o.id, o.identity), {
            signal: AbortSignal.timeout(o.renewDeadlineMs),
          })
          .catch((err: unknown) => {
            o.logger.warn({ err }, "could not delete the membership lease; it expires");
          });
    }
  }

  async #membership(stop: AbortSignal): Promise<void> {
    const o = this.#o;
    const elector = this.#newElector(memberLeaseName(o.id, o.identity), false, {
      [SHARDS_ANNOTATION]: String(o.shards),
    });
    this.#memberElector = elector;
    while (!stop.aborted) {
      if (!(await elector.acquire(stop))) return;
      if ((await elector.hold(stop)) !== "lost") return;
      // Cut off from the API server (or starved past the renew deadline): its shard Leases are
      // as good as gone. Everything of every shard stops now, not shard by shard; the replica
      // stays up with its caches and rejoins once its membership renews again — no restart,
      // no relist of every object, which under an overloaded API server would feed the storm.
      o.logger.error("membership lease lost: every shard is given up until it is renewed again");
      for (const [i, t] of this.#tenures) {
        t.cancel.abort(new NotLeaderError("membership lease lost"));
        t.stopHold.abort();
        this.#retire(i, t);
        // Its elector is dropped without a release: the per-Lease gauge says so itself.
        o.metrics?.leaderStatus.set({ name: shardLeaseName(o.id, i) }, 0);
      }
    }
  }

  async #tick(stop: AbortSignal): Promise<void> {
    const o = this.#o;
    // Not a member (joining, or cut off): take nothing.
    if (this.#memberElector?.isLeader !== true) return;
    const signal = AbortSignal.any([stop, AbortSignal.timeout(o.renewDeadlineMs)]);
    const { items } = await o.client.list(LeaseResource, { namespace: o.namespace, signal });
    const now = o.clock.monotonic();
    for (const lease of items) {
      const shard = shardOfLeaseName(o.id, lease.metadata.name ?? "", o.shards);
      if (shard !== undefined) this.#electors[shard]?.observe(lease);
    }
    this.#roster.observe(items, now);
    const others = this.#roster.others(now);
    // Guarded by their resourceVersions: a replica that renewed meanwhile keeps its Lease (and
    // one deleted under it is recreated at its next renewal).
    deleteDead(o, this.#roster.dead(now), signal, "the Lease of a replica of another --shards, long gone");
    deleteDead(
      o,
      this.#roster.longGoneMembers(now, memberLeaseName(o.id, o.identity)),
      signal,
      "the membership lease of a replica long gone",
    );
    const members = this.#roster.liveMembers(now);
    const holders = this.#electors.map((e, i) => {
      const t = this.#tenures.get(i);
      if (t) return o.identity;
      const seen = e.observedHolder();
      // A lease still naming this identity is a previous incarnation's (SIGKILLed, restarted
      // with the same pod name): it is ours to take back at once, as client-go does.
      return seen.live && seen.holder !== o.identity ? seen.holder : "";
    });
    const plan = planShards({ shards: o.shards, self: o.identity, members, holders });
    if (
      plan.mine !== this.#lastPlan?.mine ||
      plan.members !== this.#lastPlan.members ||
      plan.acquire > 0 ||
      plan.release > 0
    )
      o.logger.debug({ plan, owned: this.owned }, "shard plan");
    this.#lastPlan = plan;
    o.metrics?.shardMembers.set(plan.members);
    if (plan.release > 0) {
      const candidates = this.owned;
      for (let k = 0; k < plan.release && candidates.length > 0; k++) {
        const pick = candidates.splice(Math.floor(this.#random() * candidates.length), 1)[0];
        if (pick !== undefined) this.#handBack(pick);
      }
    }
    const waitingFor = others.map((r) => `${r.holder} (--shards ${r.shards})`).join(", ");
    if (waitingFor !== this.#waitingFor) {
      if (waitingFor === "") o.logger.info("no replica of another --shards is left: taking shards again");
      else
        o.logger.warn(
          { others: waitingFor },
          "replicas of another --shards run under the same leader election id: taking no shard until they are gone",
        );
    }
    this.#waitingFor = waitingFor;
    o.onOthers?.(others.length > 0);
    if (plan.acquire > 0 && others.length === 0) {
      const free = holders.flatMap((h, i) => (h === "" && !this.#tenures.has(i) ? [i] : []));
      let got = 0;
      while (got < plan.acquire && free.length > 0 && !stop.aborted) {
        const i = free.splice(Math.floor(this.#random() * free.length), 1)[0];
        if (i === undefined) break;
        const elector = this.#electors[i];
        if (elector && (await elector.tryAcquire(stop))) {
          got++;
          this.#startTenure(i, elector, stop);
        }
      }
    }
  }

  #startTenure(i: number, elector: LeaderElector, stop: AbortSignal): void {
    const o = this.#o;
    const stopHold = new AbortController();
    const cancel = new AbortController();
    const tenure: Tenure = { elector, stopHold, cancel, releasing: false, done: Promise.resolve() };
    tenure.done = elector.hold(AbortSignal.any([stop, stopHold.signal])).then((outcome) => {
      if (outcome !== "lost") return;
      cancel.abort(new NotLeaderError(`shard ${String(i)} lost`));
      this.#retire(i, tenure);
      o.logger.error({ shard: i }, "shard lease lost: its in-flight reconciles are cancelled");
    });
    this.#tenures.set(i, tenure);
    this.#updateMetrics();
    o.logger.info({ shard: i, owned: this.owned }, "shard acquired");
    try {
      o.onAcquired(i);
    } catch (err) {
      o.logger.error({ err, shard: i }, "enqueueing the keys of an acquired shard failed");
    }
  }

  /** Graceful hand-back: no new work for the shard, in-flight work ends, then the release. */
  #handBack(i: number): void {
    const o = this.#o;
    const t = this.#tenures.get(i);
    if (!t || t.releasing) return;
    t.releasing = true;
    this.#updateMetrics();
    o.logger.info({ shard: i }, "handing a shard back to a replica below its share");
    const run = (async () => {
      // Bounded: the lease is renewed meanwhile; past the bound the stragglers are cancelled.
      const until = o.clock.monotonic() + o.leaseDurationMs;
      while (o.busy(i) && o.clock.monotonic() < until && t.elector.isLeader)
        await sleep(50, t.stopHold.signal, o.clock);
      t.cancel.abort(new NotLeaderError(`shard ${String(i)} handed back`));
      t.stopHold.abort();
      await t.done;
      await t.elector.release();
      this.#retire(i, t);
      o.logger.info({ shard: i, owned: this.owned }, "shard released");
    })().catch((err: unknown) => {
      o.logger.warn({ err, shard: i }, "handing the shard back failed; its lease expires");
    });
    this.#handoffs.add(run);
    void run.finally(() => this.#handoffs.delete(run));
  }

  /** The tenure is over: a fresh elector for the shard (an elector's lostSignal fires once). */
  #retire(i: number, t: Tenure): void {
    if (this.#tenures.get(i) !== t) return;
    this.#tenures.delete(i);
    this.#electors[i] = this.#newElector(shardLeaseName(this.#o.id, i));
    this.#updateMetrics();
    this.#released(i);
  }

  #released(i: number): void {
    try {
      this.#o.onReleased?.(i);
    } catch (err) {
      this.#o.logger.error({ err, shard: i }, "cleaning up after a shard given up failed");
    }
  }

  #updateMetrics(): void {
    this.#o.metrics?.shardsOwned.set(this.owned.length);
  }

  #jittered(): number {
    return Math.round(this.#o.retryPeriodMs * (1 + this.#random() * 0.2));
  }

  #newElector(name: string, withMetrics = true, annotations?: Record<string, string>): LeaderElector {
    const o = this.#o;
    return new LeaderElector({
      annotations,
      client: o.client,
      namespace: o.namespace,
      name,
      identity: o.identity,
      leaseDurationMs: o.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs,
      clock: o.clock,
      logger: o.logger,
      metrics: withMetrics ? o.metrics : undefined,
      random: this.#random,
    });
  }
}
