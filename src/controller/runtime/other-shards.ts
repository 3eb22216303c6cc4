/**
 * One --shards at a time under one --leader-election-id. Replicas of two values of S split the
 * objects differently: shard 3 of 6 and shard 9 of 12 share objects but not a Lease, and a
 * single leader (S = 1) holds a Lease no sharded replica takes. During a rolling change of S
 * (a Helm upgrade: new pods start before the old ones stop) both would act on the same objects
 * and could each create a VM for one. So every replica says its S — sharded replicas in an
 * annotation of their membership Lease, a single leader by holding the Lease named after the id
 * — and none takes work while a live replica of another S is seen: the configuration already
 * running keeps what it holds, the new one waits until the old is gone.
 *
 * Liveness is judged as the leader election judges expiry: by when a Lease's record was first
 * seen unchanged, on our own monotonic clock (never its renewTime against our wall clock), so a
 * Lease seen for the first time counts as live for a whole lease duration.
 */
import type { Logger } from "pino";
import { GROUP } from "../../api/group.ts";
import type { KubeClient } from "../../kube/client.ts";
import type { Lease } from "../../kube/core-types.ts";
import { ForbiddenError } from "../../kube/errors.ts";
import { LeaseResource } from "../../kube/resources.ts";
import { sleep, type Clock } from "../../util/clock.ts";
import type { LeaderElector } from "./leader-election.ts";
import { isMemberLeaseName } from "./sharding.ts";

/** On a membership Lease: the --shards of the replica renewing it. */
export const SHARDS_ANNOTATION = `${GROUP}/shards`;

/** A live replica of another configuration: its Lease, holder and S ("unknown" if not said). */
export interface OtherReplica {
  lease: string;
  holder: string;
  shards: string;
}

interface Seen {
  record: string;
  holder: string;
  shards: string;
  at: number;
  durationMs: number;
  resourceVersion: string;
}

/**
 * The id's leader and membership Leases as last listed, with when each record was first seen
 * unchanged: which replicas of another configuration are alive, which members count for the
 * fair share (the shard set's), and which Leases are long gone.
 */
export class OtherShards {
  readonly #id: string;
  readonly #shards: number;
  readonly #identity: string;
  readonly #minDurationMs: number;
  readonly #seen = new Map<string, Seen>();

  /** `minDurationMs`: our own lease duration; a Lease saying a shorter one is judged by ours. */
  constructor(opts: { id: string; shards: number; identity: string; minDurationMs: number }) {
    this.#id = opts.id;
    this.#shards = opts.shards;
    this.#identity = opts.identity;
    this.#minDurationMs = opts.minDurationMs;
  }

  /** One listing of the namespace's Leases, at monotonic time `now`. */
  observe(leases: readonly Lease[], now: number): void {
    const names = new Set<string>();
    for (const lease of leases) {
      const name = lease.metadata.name ?? "";
      const member = isMemberLeaseName(this.#id, name);
      if (!member && name !== this.#id) continue;
      names.add(name);
      const spec = lease.spec ?? {};
      const shards = member ? (lease.metadata.annotations?.[SHARDS_ANNOTATION] ?? "unknown") : "1";
      const record = `${spec.holderIdentity ?? ""}|${spec.renewTime ?? ""}|${String(spec.leaseTransitions ?? 0)}|${shards}`;
      const prev = this.#seen.get(name);
      const resourceVersion = lease.metadata.resourceVersion ?? "";
      if (prev?.record === record) {
        prev.resourceVersion = resourceVersion;
        continue;
      }
      this.#seen.set(name, {
        record,
        holder: spec.holderIdentity ?? "",
        shards,
        at: now,
        durationMs: Math.max(this.#minDurationMs, (spec.leaseDurationSeconds ?? 0) * 1000),
        resourceVersion,
      });
    }
    for (const name of this.#seen.keys()) if (!names.has(name)) this.#seen.delete(name);
  }

  /** Live replicas of another S than ours, as of the last `observe`. */
  others(now: number): OtherReplica[] {
    const mine = String(this.#shards);
    const out: OtherReplica[] = [];
    for (const [lease, s] of this.#seen) {
      if (s.holder === "" || s.holder === this.#identity || s.shards === mine) continue;
      if (now - s.at < s.durationMs) out.push({ lease, holder: s.holder, shards: s.shards });
    }
    return out;
  }

  /** Holders of every live membership Lease (of any S: the shard set's member count). */
  liveMembers(now: number): string[] {
    return [...this.#seen]
      .filter(
        ([lease, s]) => isMemberLeaseName(this.#id, lease) && s.holder !== "" && now - s.at < s.durationMs,
      )
      .map(([, s]) => s.holder);
  }

  /**
   * Leases of another configuration unchanged for a lease duration: their replicas stopped
   * renewing (and so acting). Deleted by whoever runs now, guarded by these resourceVersions:
   * nobody of the old configuration is left to, and each would otherwise hold every later
   * start of this one for a lease duration.
   */
  dead(now: number): { lease: string; resourceVersion: string }[] {
    const mine = String(this.#shards);
    return this.#unchanged(now, (lease, s) => s.shards !== mine && now - s.at >= s.durationMs);
  }

  /**
   * Membership Leases of our own S unchanged for ten lease durations and at least ten
   * minutes, our own apart: replicas gone for good (a pod SIGKILLed never deletes its own;
   * pod names change with every rollout). Forgotten here once returned, so that a failed
   * delete is not repeated every period (seen again, they wait as long again).
   */
  longGoneMembers(now: number, selfLease: string): { lease: string; resourceVersion: string }[] {
    const mine = String(this.#shards);
    const gone = this.#unchanged(
      now,
      (lease, s) =>
        lease !== selfLease &&
        isMemberLeaseName(this.#id, lease) &&
        s.shards === mine &&
        now - s.at >= Math.max(10 * s.durationMs, 600_000),
    );
    for (const g of gone) this.#seen.delete(g.lease);
    return gone;
  }

  #unchanged(
    now: number,
    pick: (lease: string, s: Seen) => boolean,
  ): { lease: string; resourceVersion: string }[] {
    return [...this.#seen]
      .filter(([lease, s]) => pick(lease, s))
      .map(([lease, s]) => ({ lease, resourceVersion: s.resourceVersion }));
  }
}

export interface AloneOptions {
  client: KubeClient;
  namespace: string;
  /** --leader-election-id: the single leader's Lease, and the prefix of the members'. */
  id: string;
  identity: string;
  leaseDurationMs: number;
  retryPeriodMs: number;
  clock: Clock;
  logger: Logger;
  random?: () => number;
}

/**
 * The single leader's acquire: the Lease is tried only while no sharded replica of the same id
 * is seen alive, and checked once more after it was won, before anything acts — a sharded
 * replica starting at the same moment may have listed the Leases before this one was taken; it
 * is then seen here, and the Lease goes back. True once leading; false when `signal` aborted.
 * Without the right to list Leases (RBAC older than this check) the check is skipped, said once.
 */
export async function acquireAlone(
  elector: LeaderElector,
  o: AloneOptions,
  signal: AbortSignal,
): Promise<boolean> {
  const others = new OtherShards({
    id: o.id,
    shards: 1,
    identity: o.identity,
    minDurationMs: o.leaseDurationMs,
  });
  const random = o.random ?? Math.random;
  let said = "";
  /** Whether a live replica of another --shards is seen (false when the Leases cannot be listed). */
  const blocked = async (): Promise<boolean> => {
    const now = o.clock.monotonic();
    try {
      const { items } = await o.client.list(LeaseResource, { namespace: o.namespace, signal });
      others.observe(items, now);
    } catch (err) {
      if (!(err instanceof ForbiddenError)) throw err;
      if (said !== "forbidden")
        o.logger.warn({ err }, "cannot list Leases: not checking for sharded replicas of this id");
      said = "forbidden";
      return false;
    }
    deleteDead(o, others.dead(now), signal, "the membership Lease of a sharded replica, long gone");
    const live = others
      .others(now)
      .map((r) => `${r.holder} (--shards ${r.shards})`)
      .join(", ");
    if (live !== "" && live !== said)
      o.logger.warn(
        { others: live },
        "sharded replicas run under the same leader election id: not leading until they are gone",
      );
    said = live;
    return live !== "";
  };
  o.logger.info({ lease: `${o.namespace}/${o.id}`, identity: o.identity }, "waiting for leadership");
  while (!signal.aborted) {
    try {
      if (!(await blocked()) && (await elector.tryAcquire(signal))) {
        if (!(await blocked())) {
          o.logger.info({ identity: o.identity }, "became leader");
          return true;
        }
        await elector.release();
      }
    } catch (err) {
      if (signal.aborted) break;
      o.logger.warn({ err }, "could not list the Leases; trying again");
    }
    await sleep(Math.round(o.retryPeriodMs * (1 + random() * 0.2)), signal, o.clock);
  }
  return false;
}

/**
 * Deletes the Leases named, each only in the version seen (one renewed since is kept), and
 * logs `what` was deleted.
 */
export function deleteDead(
  o: { client: KubeClient; namespace: string; logger: Logger },
  dead: readonly { lease: string; resourceVersion: string }[],
  signal: AbortSignal,
  what: string,
): void {
  for (const d of dead)
    o.client
      .delete(LeaseResource, o.namespace, d.lease, {
        signal,
        ...(d.resourceVersion === "" ? {} : { preconditions: { resourceVersion: d.resourceVersion } }),
      })
      .then(() => {
        o.logger.info({ lease: d.lease }, `deleted ${what}`);
      })
      .catch((err: unknown) => {
        o.logger.debug({ err, lease: d.lease }, "could not delete a stale Lease");
      });
}
