import type { Logger } from "pino";
import type { CloudInstance } from "../api/index.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { Driver, OwnedMachine } from "../providers/driver.ts";
import { shortDigest } from "../util/digest.ts";
import type { Clock } from "../util/clock.ts";
import { sleep } from "../util/clock.ts";
import type { EventSink, KubeObject } from "./ports.ts";
import type { Runnable } from "./manager.ts";

export type OrphanPolicy = "Report" | "Delete";

export interface OrphanSweeperOptions {
  /**
   * Every CloudInstance in scope (any namespace), deleting ones included: the cache when it
   * holds them all; with --shard-watch=labels (the cache holds only this replica's shards) a
   * list from the API server, read at each sweep before any VM is judged.
   */
  instances: (signal: AbortSignal) => readonly CloudInstance[] | Promise<readonly CloudInstance[]>;
  /**
   * The accounts the live objects use, one driver each (opened through the endpoint policy
   * and the labelled credentials): an account no live object names cannot be scanned.
   */
  accounts: (
    instances: readonly CloudInstance[],
  ) => Promise<readonly { driver: Driver<unknown>; account: string }[]>;
  clusterID: string;
  periodMs: number;
  policy: OrphanPolicy;
  graceMs: number;
  /** Where Warning Events about orphans go (the operator's own Pod). */
  reportOn: KubeObject | undefined;
  events: EventSink;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /** Leader election fencing, before every deletion. */
  fence: () => void;
  /**
   * Whether this replica sweeps now (with --shards > 1: it holds shard 0); always when unset.
   * The others neither scan nor report, so an orphan is reported once, not once per replica.
   */
  active?: () => boolean;
  random?: () => number;
}

/** A marked VM of this cluster whose owner is not a live object. */
export interface Orphan extends OwnedMachine {
  provider: string;
  account: string;
}

/**
 * VMs the operator made and no object owns any more (a finalizer removed by hand, a namespace
 * force-deleted, a backup restored without them) cost money silently. Every scan period
 * (jittered) it lists each account's VMs carrying the ownership mark — only drivers that can,
 * within their account's rate limit — and reports those whose owner UID is no live object:
 * a metric, a Warning Event and a log line. With policy Delete, one still orphaned after the
 * grace period is deleted. Only VMs marked with THIS cluster's identity are ever considered:
 * another cluster's VMs, unmarked VMs and VMs marked before marks carried a cluster are never
 * reported nor touched.
 */
export class OrphanSweeper implements Runnable {
  readonly name = "orphan-sweeper";
  readonly needsLeader = true;
  readonly #o: OrphanSweeperOptions;
  /** First time each orphan was seen (monotonic ms), by `account/id`: the grace clock. */
  readonly #firstSeen = new Map<string, number>();
  readonly #reported = new Set<string>();

  constructor(opts: OrphanSweeperOptions) {
    this.#o = opts;
  }

  async run(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    if (o.clusterID === "") {
      o.logger.warn(
        "orphan sweeper off: this cluster has no identity for ownership marks (see --cluster-id)",
      );
      return;
    }
    const random = o.random ?? Math.random;
    while (!signal.aborted) {
      await sleep(Math.round(o.periodMs * (0.9 + 0.2 * random())), signal, o.clock);
      if (signal.aborted) break;
      if (o.active && !o.active()) continue;
      try {
        await this.sweep(signal);
      } catch (err) {
        o.logger.warn({ err }, "orphan scan failed; trying again next period");
      }
    }
  }

  /** One scan: find, report, and (policy Delete, past the grace) delete. Returns what it found. */
  async sweep(signal: AbortSignal): Promise<Orphan[]> {
    const o = this.#o;
    const instances = await o.instances(signal);
    const live = new Set(instances.map((i) => i.metadata.uid ?? ""));
    const found: Orphan[] = [];
    const counts = new Map<string, { provider: string; account_digest: string; n: number }>();
    for (const { driver, account } of await o.accounts(instances)) {
      if (!driver.listOwned) continue;
      const owned = await driver.listOwned({ signal });
      const digest = shortDigest(driver.provider, account);
      const key = `${driver.provider}/${digest}`;
      counts.set(key, { provider: driver.provider, account_digest: digest, n: 0 });
      for (const vm of owned) {
        if (vm.cluster !== o.clusterID || live.has(vm.ownerUID)) continue;
        found.push({ ...vm, provider: driver.provider, account: digest });
        const c = counts.get(key);
        if (c) c.n++;
        await this.#handle({ ...vm, provider: driver.provider, account: digest }, driver, signal);
      }
    }
    o.metrics.orphans.reset();
    for (const c of counts.values())
      o.metrics.orphans.set({ provider: c.provider, account_digest: c.account_digest }, c.n);
    // Forget VMs that are not orphans any more (adopted, deleted): their grace starts over.
    const now = new Set(found.map((f) => `${f.account}/${f.id}`));
    for (const k of this.#firstSeen.keys()) if (!now.has(k)) this.#firstSeen.delete(k);
    for (const k of this.#reported) if (!now.has(k)) this.#reported.delete(k);
    return found;
  }

  async #handle(orphan: Orphan, driver: Driver<unknown>, signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const key = `${orphan.account}/${orphan.id}`;
    const first = this.#firstSeen.get(key) ?? o.clock.monotonic();
    this.#firstSeen.set(key, first);
    const what = `VM ${orphan.id} at ${orphan.provider} (account ${orphan.account}) carries the mark of object ${orphan.ownerUID}, which no longer exists`;
    if (!this.#reported.has(key)) {
      this.#reported.add(key);
      o.logger.warn({ provider: orphan.provider, vm: orphan.id, owner: orphan.ownerUID }, "orphaned VM");
      if (o.reportOn)
        o.events.record(
          o.reportOn,
          "Warning",
          "OrphanedVM",
          `${what}; ${o.policy === "Delete" ? `it is deleted if still orphaned after ${String(Math.round(o.graceMs / 1000))} s` : "delete it at the provider, or adopt it with the external-id annotation"}`,
        );
    }
    if (o.policy !== "Delete" || o.clock.monotonic() - first < o.graceMs) return;
    o.fence();
    await driver.delete({ id: orphan.id, providerData: {} }, { signal });
    o.logger.warn({ provider: orphan.provider, vm: orphan.id }, "orphaned VM deleted");
    if (o.reportOn)
      o.events.record(o.reportOn, "Warning", "OrphanDeleted", `${what}; deleted after the grace period`);
    this.#firstSeen.delete(key);
  }
}
