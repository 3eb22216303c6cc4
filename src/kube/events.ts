import type { Logger } from "pino";
import type { EventSink, KubeObject } from "../controller/ports.ts";
import type { KubeClient } from "./client.ts";
import type { KubeEvent } from "./core-types.ts";
import { NotFoundError } from "./errors.ts";
import { EventResource } from "./resources.ts";
import { capMessage } from "../util/cap-message.ts";
import { Fifo } from "../util/fifo.ts";

export const EVENT_COMPONENT = "cloud-instance-operator";

export interface EventRecorderOptions {
  client: KubeClient;
  logger: Logger;
  /** Pod name, written as reportingInstance / source.host. */
  instance?: string;
  /** Identical events within this window raise the count of one Event (client-go: 10 min). */
  aggregationWindowMs?: number;
  /**
   * Writes waiting beyond this are dropped (logged): events must never hold the operator back.
   * Warnings and Normal events have a budget each, so a backlog of Normal events never costs a
   * Warning its place.
   */
  maxPending?: number;
  now?: () => number;
}

interface Pending {
  obj: KubeObject;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  at: number;
}

interface Seen {
  namespace: string;
  name: string;
  count: number;
  firstTimestamp: string;
  lastMs: number;
}

const MAX_REMEMBERED = 4096;
/** At most one "event dropped" warning per this interval, counting the drops in between. */
const DROPPED_WARNING_INTERVAL_MS = 10_000;

/**
 * Writes core/v1 Events for `kubectl describe`. Like client-go's event correlator, an event
 * identical to one recorded within the window (same object, type, reason and message) bumps
 * that Event's count and lastTimestamp instead of creating another object. Writes happen in
 * the background, one at a time as client-go's recorder does, Warnings before Normal events
 * (each kind in the order recorded; `kubectl describe` orders by timestamp, not by write); `record`
 * never throws and never waits. Under a slow API server the writes fall behind and the excess
 * is dropped, as client-go's is; Warnings go first and have a budget of their own, since they
 * are the errors someone will look for.
 */
export class EventRecorder implements EventSink {
  readonly #client: KubeClient;
  readonly #logger: Logger;
  readonly #instance: string | undefined;
  readonly #windowMs: number;
  readonly #maxPending: number;
  readonly #now: () => number;
  readonly #seen = new Map<string, Seen>();
  readonly #queued = { Warning: new Fifo<Pending>(), Normal: new Fifo<Pending>() };
  /** Queued or being written, per type. */
  readonly #pending = { Warning: 0, Normal: 0 };
  #writing = false;
  #idle: (() => void)[] = [];
  #seq = 0;
  /** Events dropped since the last warning about it, and when that warning was logged. */
  #dropped = 0;
  #droppedWarnedAt = -Infinity;
  /** Aborted by `close`: the writes still queued or in flight end at once. */
  readonly #closed = new AbortController();

  constructor(opts: EventRecorderOptions) {
    this.#client = opts.client;
    this.#logger = opts.logger;
    this.#instance = opts.instance;
    this.#windowMs = opts.aggregationWindowMs ?? 10 * 60_000;
    this.#maxPending = opts.maxPending ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  record(obj: KubeObject, type: "Normal" | "Warning", reason: string, text: string): void {
    const message = capMessage(text);
    const at = this.#now();
    if (this.#pending[type] >= this.#maxPending) {
      // One warning per interval, not one per event: under a backlog a line per dropped event
      // cost more CPU (synchronous log writes) than the reconciles that recorded them.
      this.#dropped++;
      if (at - this.#droppedWarnedAt >= DROPPED_WARNING_INTERVAL_MS) {
        this.#logger.warn(
          { type, reason, object: obj.metadata.name, dropped: this.#dropped },
          "event dropped: too many pending event writes (dropped: how many since the last such warning)",
        );
        this.#dropped = 0;
        this.#droppedWarnedAt = at;
      }
      return;
    }
    this.#pending[type]++;
    this.#queued[type].push({ obj, type, reason, message, at });
    void this.#pump();
  }

  /** Resolves once every event recorded so far has been written (or failed). */
  async flush(): Promise<void> {
    if (!this.#writing) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Writes what is queued, one at a time, until nothing is. */
  async #pump(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    for (;;) {
      const next = this.#queued.Warning.shift() ?? this.#queued.Normal.shift();
      if (next === undefined) break;
      const { obj, type, reason, message, at } = next;
      try {
        if (!this.#closed.signal.aborted) await this.#write(obj, type, reason, message, at);
      } catch (err) {
        this.#logger.warn(
          { err, reason, namespace: obj.metadata.namespace, name: obj.metadata.name },
          "could not record event",
        );
      } finally {
        this.#pending[type]--;
      }
    }
    this.#writing = false;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }

  /**
   * Gives up the writes still queued or in flight (after `flush` had its chance): a process
   * cut off from the API server must not be kept alive by Events it can no longer deliver.
   */
  close(): void {
    this.#closed.abort();
  }

  async #write(
    obj: KubeObject,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    at: number,
  ): Promise<void> {
    const meta = obj.metadata;
    const namespace = meta.namespace ?? "default";
    const key = [meta.uid ?? "", obj.kind ?? "", namespace, meta.name ?? "", type, reason, message].join(
      "\u0000",
    );
    const stamp = new Date(at).toISOString();
    const seen = this.#seen.get(key);
    if (seen && at - seen.lastMs <= this.#windowMs) {
      try {
        // Neither write's answer is read: the Event is not parsed back (a failure still is).
        await this.#client.patchUnread(
          EventResource,
          seen.namespace,
          seen.name,
          { count: seen.count + 1, lastTimestamp: stamp },
          "merge",
          { signal: this.#closed.signal },
        );
        seen.count++;
        seen.lastMs = at;
        this.#remember(key, seen);
        return;
      } catch (err) {
        // Someone deleted the Event (TTL): start a new one.
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    const name = `${meta.name ?? "object"}.${(at * 1000 + (this.#seq++ % 1000)).toString(16)}`;
    const event: KubeEvent = {
      metadata: { name, namespace },
      involvedObject: {
        ...(obj.apiVersion === undefined ? {} : { apiVersion: obj.apiVersion }),
        ...(obj.kind === undefined ? {} : { kind: obj.kind }),
        namespace,
        ...(meta.name === undefined ? {} : { name: meta.name }),
        ...(meta.uid === undefined ? {} : { uid: meta.uid }),
        ...(meta.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }),
      },
      reason,
      message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
      type,
      count: 1,
      firstTimestamp: stamp,
      lastTimestamp: stamp,
      source: { component: EVENT_COMPONENT, ...(this.#instance ? { host: this.#instance } : {}) },
      reportingComponent: EVENT_COMPONENT,
      ...(this.#instance ? { reportingInstance: this.#instance } : {}),
    };
    await this.#client.createUnread(EventResource, event, { signal: this.#closed.signal });
    this.#remember(key, { namespace, name, count: 1, firstTimestamp: stamp, lastMs: at });
  }

  #remember(key: string, seen: Seen): void {
    // Re-insert so Map order is least-recently-used first.
    this.#seen.delete(key);
    this.#seen.set(key, seen);
    if (this.#seen.size > MAX_REMEMBERED) {
      const oldest = this.#seen.keys().next();
      if (!oldest.done) this.#seen.delete(oldest.value);
    }
  }
}
