import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { objectKey, splitKey, type AnyObject } from "../../kube/object.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { Clock } from "../../util/clock.ts";
import type { Informer } from "./informer.ts";
import type { RateLimiter } from "./rate-limiter.ts";
import { WorkQueue } from "./workqueue.ts";

export interface ReconcileRequest {
  /** `namespace/name` */
  key: string;
  namespace: string;
  name: string;
}

export interface ReconcileContext extends ReconcileRequest {
  /** Child logger with controller, namespace, name and reconcileID. */
  logger: Logger;
  reconcileID: string;
  /**
   * Aborts when the reconcile must stop at once: leadership lost (another replica may act on
   * the object now), or the shutdown grace period over. Pass it to every call that can wait.
   */
  signal: AbortSignal;
}

export interface ReconcileResult {
  /** Reconcile again after this long (polling a VM in transition, periodic drift check). */
  requeueAfterMs?: number | undefined;
  /** Reconcile again with rate-limited backoff, without it being an error. */
  requeue?: boolean | undefined;
}

export type Reconcile = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult | undefined>;

/** Watches of other kinds that enqueue keys of the controller's kind. */
export interface MappedWatch {
  informer: Informer<AnyObject>;
  /** Keys (`namespace/name`) of the controller's kind to reconcile when `obj` changes. */
  map: (obj: AnyObject) => readonly string[];
}

export interface ControllerOptions {
  name: string;
  for: Informer<AnyObject>;
  /** Kinds whose objects carry a controller ownerReference to the `for` kind. */
  owns?: Informer<AnyObject>[];
  watches?: MappedWatch[];
  reconcile: Reconcile;
  /**
   * Which updates of the `for` kind are worth a reconcile (controller-runtime's predicates);
   * all of them when unset.
   */
  updatePredicate?: ((old: AnyObject, obj: AnyObject) => boolean) | undefined;
  maxConcurrentReconciles: number;
  rateLimiter: RateLimiter;
  logger: Logger;
  metrics?: Metrics | undefined;
  clock: Clock;
  /**
   * Sharding: whether this replica reconciles `key` now. Undefined: not this replica's (the
   * key is dropped; the replica that owns its shard reconciles it). Otherwise the reconcile
   * runs, its context signal also aborting on `signal` (the shard lost or handed back).
   */
  admit?: ((key: string) => { signal?: AbortSignal | undefined } | undefined) | undefined;
}

/**
 * An error the user must fix (bad spec, rejected credentials): retrying cannot help, so the
 * key is not requeued until the object changes. Any error with `terminal === true` counts.
 */
export function isTerminalError(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { terminal?: unknown }).terminal === true;
}

/**
 * Wires watches to a work queue and runs `maxConcurrentReconciles` workers over it, like
 * controller-runtime's controller. A reconcile that throws is logged with its stack and
 * retried with backoff (unless terminal); it never kills a worker.
 */
export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly #o: ControllerOptions;
  readonly #logger: Logger;
  #active = 0;
  readonly #inFlight = new Set<string>();

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.#o = opts;
    this.#logger = opts.logger.child({ controller: opts.name });
    this.queue = new WorkQueue({
      name: opts.name,
      clock: opts.clock,
      rateLimiter: opts.rateLimiter,
      metrics: opts.metrics,
    });
    opts.metrics?.activeWorkers.sample({ controller: opts.name }, () => this.#active);
    const enqueue = (obj: AnyObject): void => {
      this.queue.add(objectKey(obj));
    };
    const worthIt = opts.updatePredicate;
    opts.for.addHandler({
      onAdd: enqueue,
      onUpdate: (old, obj) => {
        if (!worthIt || worthIt(old, obj)) enqueue(obj);
      },
      onDelete: enqueue,
    });
    const ownerKind = opts.for.resource.kind;
    const ownerApiVersion = opts.for.resource.apiVersion;
    for (const owned of opts.owns ?? []) {
      const toOwner = (obj: AnyObject): void => {
        for (const ref of obj.metadata.ownerReferences ?? []) {
          if (ref.controller === true && ref.kind === ownerKind && ref.apiVersion === ownerApiVersion) {
            const ns = obj.metadata.namespace;
            this.queue.add(ns ? `${ns}/${ref.name}` : ref.name);
          }
        }
      };
      owned.addHandler({
        onAdd: toOwner,
        onUpdate: (old, obj) => {
          // An owner reference removed by the update still concerns the old owner.
          toOwner(old);
          toOwner(obj);
        },
        onDelete: toOwner,
      });
    }
    for (const w of opts.watches ?? []) {
      const mapped = (obj: AnyObject): void => {
        for (const key of w.map(obj)) this.queue.add(key);
      };
      w.informer.addHandler({
        onAdd: mapped,
        onUpdate: (old, obj) => {
          mapped(old);
          mapped(obj);
        },
        onDelete: mapped,
      });
    }
  }

  /** Reconciles currently running. */
  get activeWorkers(): number {
    return this.#active;
  }

  /** Keys being reconciled right now (a shard hand-back waits for its own to end). */
  get inFlight(): ReadonlySet<string> {
    return this.#inFlight;
  }

  /**
   * Runs workers until `stop` aborts, then lets in-flight reconciles finish; `hardStop`
   * aborts their context signal (leadership lost, or the shutdown grace period over).
   * Resolves when every worker has ended.
   */
  async run(stop: AbortSignal, hardStop: AbortSignal): Promise<void> {
    const onStop = (): void => {
      this.queue.shutDown();
    };
    if (stop.aborted) onStop();
    stop.addEventListener("abort", onStop, { once: true });
    this.#logger.info({ workers: this.#o.maxConcurrentReconciles }, "starting workers");
    try {
      await Promise.all(
        Array.from({ length: this.#o.maxConcurrentReconciles }, () => this.#worker(hardStop)),
      );
    } finally {
      stop.removeEventListener("abort", onStop);
    }
    this.#logger.info("all workers finished");
  }

  async #worker(hardStop: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const admitted = this.#o.admit ? this.#o.admit(key) : {};
      if (!admitted) {
        // Another replica's shard: dropped here, its owner has it queued.
        this.queue.forget(key);
        this.queue.done(key);
        continue;
      }
      this.#inFlight.add(key);
      try {
        const shardSignal = admitted.signal;
        await this.#process(key, shardSignal ? AbortSignal.any([hardStop, shardSignal]) : hardStop);
      } finally {
        this.#inFlight.delete(key);
        this.queue.done(key);
      }
    }
  }

  async #process(key: string, signal: AbortSignal): Promise<void> {
    const { namespace = "", name } = splitKey(key);
    // The reconcile's ID and child logger are made when something asks for them (a log
    // line): most reconciles log nothing at the default level, and a pino child (bindings
    // serialised, redaction set up) plus a UUID cost ~1% of the operator's CPU when made
    // for every reconcile.
    let child: Logger | undefined;
    const parent = this.#logger;
    let id: string | undefined;
    const idOf = (): string => (id ??= randomUUID());
    const loggerOf = (): Logger => (child ??= parent.child({ namespace, name, reconcileID: idOf() }));
    const m = this.#o.metrics;
    const labels = { controller: this.name };
    this.#active++;
    const started = this.#o.clock.now();
    let result: ReconcileResult | undefined;
    let failure: unknown;
    let failed = false;
    try {
      result = await this.#o.reconcile(key, {
        key,
        namespace,
        name,
        get logger() {
          return loggerOf();
        },
        get reconcileID() {
          return idOf();
        },
        signal,
      });
    } catch (err) {
      failed = true;
      failure = err;
    } finally {
      this.#active--;
      m?.reconcileTime.observe(labels, (this.#o.clock.now() - started) / 1000);
    }
    if (failed) {
      m?.reconcileErrors.inc(labels);
      m?.reconcileTotal.inc({ ...labels, result: "error" });
      const err = failure instanceof Error ? failure : new Error(`non-error thrown: ${String(failure)}`);
      if (isTerminalError(failure)) {
        loggerOf().error({ err }, "reconcile failed terminally; waiting for the object to change");
        this.queue.forget(key);
      } else {
        loggerOf().error(
          { err, retries: this.queue.numRequeues(key) },
          "reconcile failed; retrying with backoff",
        );
        this.queue.addRateLimited(key);
      }
      return;
    }
    const after = result?.requeueAfterMs;
    if (after !== undefined && after > 0) {
      this.queue.forget(key);
      this.queue.addAfter(key, after);
      m?.reconcileTotal.inc({ ...labels, result: "requeue_after" });
    } else if (result?.requeue === true) {
      this.queue.addRateLimited(key);
      m?.reconcileTotal.inc({ ...labels, result: "requeue" });
    } else {
      this.queue.forget(key);
      m?.reconcileTotal.inc({ ...labels, result: "success" });
    }
    if (parent.isLevelEnabled("debug"))
      loggerOf().debug({ durationMs: this.#o.clock.now() - started }, "reconciled");
  }
}
