import type { Logger } from "pino";
import type { KubeClient } from "../../kube/client.ts";
import type { Lease } from "../../kube/core-types.ts";
import { AlreadyExistsError, ConflictError, NotFoundError } from "../../kube/errors.ts";
import { LeaseResource } from "../../kube/resources.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { Clock } from "../../util/clock.ts";
import { sleep } from "../../util/clock.ts";

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  /** How long a lease is valid without renewal (default 15 s). */
  leaseDurationMs: number;
  /** The leader gives up if it could not renew for this long (default 10 s). */
  renewDeadlineMs: number;
  /** Interval between acquire/renew attempts (default 2 s). */
  retryPeriodMs: number;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics | undefined;
  random?: () => number;
  /** Written on the Lease with every acquire and renewal (a replica's --shards, say). */
  annotations?: Record<string, string> | undefined;
}

export const DEFAULT_LEASE_TIMING = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** Leadership is gone (or not held long enough to be sure): no provider mutation may be sent. */
export class NotLeaderError extends Error {
  override readonly name = "NotLeaderError";
  readonly code = "ERR_NOT_LEADER";
}

/**
 * Lease times are metav1.MicroTime: RFC 3339 with exactly six fractional digits. A real API
 * server refuses milliseconds (400); JavaScript has milliseconds, so three zeros are added.
 */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * client-go's leader election on a coordination.k8s.io Lease. Expiry is judged by when
 * *we* last saw the lease record change, on our monotonic clock, never by comparing the
 * holder's renewTime with our wall clock, so clock skew between nodes cannot cause two
 * leaders. Our own tenure is measured from the start of the last renewal that succeeded: a
 * standby cannot take over before that moment + the lease duration, so until that moment −
 * what the renew deadline leaves, acting is safe (`fence`).
 */
export class LeaderElector {
  readonly #o: LeaderElectionOptions;
  readonly #random: () => number;
  #observed: { holder: string; renewTime: string; transitions: number } | undefined;
  #observedAt = 0;
  #observedDurationMs = 0;
  #lease: Lease | undefined;
  #leading = false;
  /** Monotonic start of the last acquire/renew that succeeded. */
  #renewedAt = 0;
  readonly #lost = new AbortController();

  constructor(opts: LeaderElectionOptions) {
    this.#o = opts;
    this.#random = opts.random ?? Math.random;
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /** Aborts the moment leadership is lost: everything acting as leader stops on it. */
  get lostSignal(): AbortSignal {
    return this.#lost.signal;
  }

  /**
   * Throws NotLeaderError unless this process holds the lease by its own monotonic clock: led,
   * and renewed less than the renew deadline ago (a standby waits the whole lease duration,
   * which is longer, so the difference is the margin for clock-rate drift and a slow call).
   */
  fence(): void {
    const held = this.#leading && this.#o.clock.monotonic() - this.#renewedAt < this.#o.renewDeadlineMs;
    if (!held)
      throw new NotLeaderError("this replica does not hold the leader lease: no provider mutation is sent");
  }

  /**
   * Blocks until leadership is acquired (true) or `signal` aborts (false).
   */
  async acquire(signal: AbortSignal): Promise<boolean> {
    const log = this.#o.logger;
    log.info(
      { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity },
      "waiting for leadership",
    );
    while (!signal.aborted) {
      if (await this.tryAcquire(signal)) {
        log.info({ identity: this.#o.identity }, "became leader");
        return true;
      }
      await sleep(this.#jittered(), signal, this.#o.clock);
    }
    return false;
  }

  /**
   * One acquire attempt (bounded by the renew deadline): true when this elector now holds the
   * lease. The shard set calls it for the shards it wants instead of blocking in `acquire`.
   */
  async tryAcquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false;
    const started = this.#o.clock.monotonic();
    if (!(await this.#tryAcquireOrRenew(this.#attemptSignal(signal, this.#o.renewDeadlineMs)))) return false;
    this.#renewedAt = started;
    this.#setLeading(true);
    return true;
  }

  /**
   * Records a copy of the lease read elsewhere (the shard set lists every shard's lease each
   * period): expiry is judged from when the record was first seen unchanged, so a candidate
   * that watched the holder stop renewing may take the lease as soon as it is due.
   */
  observe(lease: Lease): void {
    this.#observe(lease, this.#o.clock.monotonic());
  }

  /** The holder last seen and whether its lease is still unexpired by our own clock. */
  observedHolder(): { holder: string; live: boolean } {
    const o = this.#o;
    const holder = this.#observed?.holder ?? "";
    if (holder === "") return { holder, live: false };
    if (holder === o.identity) return { holder, live: this.#leading };
    return { holder, live: o.clock.monotonic() - this.#observedAt < this.#observedDurationMs };
  }

  /**
   * Renews every retry period until `signal` aborts (resolves normally) or a renewal could
   * not succeed within the renew deadline (resolves "lost").
   */
  async hold(signal: AbortSignal): Promise<"stopped" | "lost"> {
    const o = this.#o;
    while (!signal.aborted) {
      await sleep(o.retryPeriodMs, signal, o.clock);
      if (signal.aborted) break;
      const started = o.clock.monotonic();
      // An attempt may only use what is left of the renew deadline: a renewal that answers
      // after it would come too late to keep the lease safe.
      const left = this.#renewedAt + o.renewDeadlineMs - started;
      if (left > 0 && (await this.#tryAcquireOrRenew(this.#attemptSignal(signal, left)))) {
        this.#renewedAt = started;
        continue;
      }
      if (o.clock.monotonic() - this.#renewedAt >= o.renewDeadlineMs || !this.#heldByUs()) {
        this.#setLeading(false);
        this.#lost.abort(new NotLeaderError("leadership lost"));
        o.logger.error({ identity: o.identity }, "leadership lost");
        return "lost";
      }
    }
    return "stopped";
  }

  /** Gives the lease up so a standby takes over at once instead of waiting for expiry. */
  async release(signal?: AbortSignal): Promise<void> {
    if (!this.#leading) return;
    this.#setLeading(false);
    const lease = this.#lease;
    if (!lease?.spec || lease.spec.holderIdentity !== this.#o.identity) return;
    const now = microTime(this.#o.clock.now());
    try {
      await this.#o.client.update(
        LeaseResource,
        {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: "",
            leaseDurationSeconds: 1,
            renewTime: now,
            acquireTime: now,
          },
        },
        { signal: signal ?? AbortSignal.timeout(this.#o.renewDeadlineMs) },
      );
      this.#o.logger.info("released leadership");
    } catch (err) {
      this.#o.logger.warn({ err }, "could not release the lease; it will expire");
    }
  }

  #heldByUs(): boolean {
    return this.#observed?.holder === this.#o.identity;
  }

  #setLeading(leading: boolean): void {
    this.#leading = leading;
    this.#o.metrics?.leaderStatus.set({ name: this.#o.name }, leading ? 1 : 0);
  }

  /**
   * One acquire/renew attempt ends with the caller's signal or after the renew deadline,
   * whichever comes first (client-go bounds each renewal the same way): a hung connection
   * must not hold the leader past the point where a standby may take over.
   */
  #attemptSignal(signal: AbortSignal, ms: number): AbortSignal {
    return AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, Math.round(ms)))]);
  }

  #jittered(): number {
    return Math.round(this.#o.retryPeriodMs * (1 + this.#random() * 0.2));
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const o = this.#o;
    const nowMs = o.clock.monotonic();
    const now = microTime(o.clock.now());
    const leaseSeconds = Math.max(1, Math.ceil(o.leaseDurationMs / 1000));
    let current: Lease;
    try {
      current = await o.client.get(LeaseResource, o.namespace, o.name, { signal });
    } catch (err) {
      if (!(err instanceof NotFoundError)) {
        o.logger.warn({ err }, "could not read the leader lease");
        return false;
      }
      try {
        this.#lease = await o.client.create(
          LeaseResource,
          {
            metadata: {
              name: o.name,
              namespace: o.namespace,
              ...(o.annotations ? { annotations: o.annotations } : {}),
            },
            spec: {
              holderIdentity: o.identity,
              leaseDurationSeconds: leaseSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
          { signal },
        );
        this.#observe(this.#lease, nowMs);
        return true;
      } catch (createErr) {
        if (!(createErr instanceof AlreadyExistsError))
          o.logger.warn({ err: createErr }, "could not create the leader lease");
        return false;
      }
    }
    this.#observe(current, nowMs);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const ours = holder === o.identity;
    // A released lease (no holder) is free at once; someone else's is free once it expired.
    const durationMs =
      ours || holder === "" ? 0 : Math.max(o.leaseDurationMs, (spec.leaseDurationSeconds ?? 0) * 1000);
    if (!ours && holder !== "" && this.#observedAt + durationMs > nowMs) return false;
    try {
      this.#lease = await o.client.update(
        LeaseResource,
        {
          ...current,
          ...(o.annotations
            ? {
                metadata: {
                  ...current.metadata,
                  annotations: { ...current.metadata.annotations, ...o.annotations },
                },
              }
            : {}),
          spec: {
            ...spec,
            holderIdentity: o.identity,
            leaseDurationSeconds: leaseSeconds,
            renewTime: now,
            acquireTime: ours ? (spec.acquireTime ?? now) : now,
            leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
          },
        },
        { signal },
      );
      this.#observe(this.#lease, nowMs);
      return true;
    } catch (err) {
      // A conflict means someone else wrote first; anything else is retried next period.
      if (!(err instanceof ConflictError)) o.logger.warn({ err }, "could not update the leader lease");
      return false;
    }
  }

  #observe(lease: Lease, nowMs: number): void {
    const spec = lease.spec ?? {};
    const record = {
      holder: spec.holderIdentity ?? "",
      renewTime: spec.renewTime ?? "",
      transitions: spec.leaseTransitions ?? 0,
    };
    const prev = this.#observed;
    if (
      !prev ||
      prev.holder !== record.holder ||
      prev.renewTime !== record.renewTime ||
      prev.transitions !== record.transitions
    ) {
      this.#observed = record;
      this.#observedAt = nowMs;
      this.#observedDurationMs = Math.max(this.#o.leaseDurationMs, (spec.leaseDurationSeconds ?? 0) * 1000);
    }
  }
}
