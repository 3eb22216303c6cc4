import type { Logger } from "pino";
import type { Controller } from "../runtime/controller.ts";
import { clockSleep } from "../runtime/backoff-manager.ts";
import type { Clock } from "../../util/clock.ts";

/**
 * Something with a lifecycle the manager owns, as controller-runtime's Runnables: it runs
 * until `signal` aborts and then returns. `needsLeader` ones run only while this replica leads.
 */
export interface Runnable {
  name: string;
  needsLeader: boolean;
  run(signal: AbortSignal): Promise<void>;
}

/**
 * The stages of a manager's stop, each a signal of its own so that stopping one stage does not
 * stop a later one: work stops first, the lease is renewed until the work drained.
 */
export class RunStops {
  /** Stop taking work: SIGTERM, or leadership lost. */
  readonly work = new AbortController();
  /** Cancel what is in flight: grace period over, or leadership lost. */
  readonly cancel = new AbortController();
  /** Stop renewing the lease(s). */
  readonly leader = new AbortController();
  #lost = false;

  /** The single leader's lease was lost: take no more work and cancel what is in flight at once. */
  loseLeadership(): void {
    this.#lost = true;
    this.work.abort();
    this.cancel.abort();
  }

  get lost(): boolean {
    return this.#lost;
  }

  abortAll(): void {
    this.work.abort();
    this.cancel.abort();
    this.leader.abort();
  }
}

/**
 * Starts the controllers and the runnables; each promise settles when that one has stopped.
 * One that fails is logged and the rest go on, as a crashed worker must not stop the others.
 */
export function startRunnables(
  controllers: Iterable<Controller>,
  runnables: readonly Runnable[],
  stops: RunStops,
  log: Logger,
): Promise<void>[] {
  return [
    ...[...controllers].map((ctrl) =>
      ctrl.run(stops.work.signal, stops.cancel.signal).catch((err: unknown) => {
        log.error({ err, controller: ctrl.name }, "controller stopped with an error");
      }),
    ),
    ...runnables.map((r) =>
      r.run(stops.work.signal).catch((err: unknown) => {
        log.error({ err, runnable: r.name }, "runnable stopped with an error");
      }),
    ),
  ];
}

/** Waits for `runs` up to `graceMs`, then aborts `hardStop` (their in-flight reconciles' signal). */
export async function drain(
  runs: Promise<void>[],
  hardStop: AbortController,
  graceMs: number,
  clock: Clock,
  log: Logger,
): Promise<void> {
  const graceOver = new AbortController();
  const finished = Promise.all(runs).then(() => true);
  const timedOut = clockSleep(clock, graceMs, graceOver.signal).then(() => false);
  const inTime = await Promise.race([finished, timedOut]);
  graceOver.abort();
  if (!inTime) {
    log.warn({ graceMs }, "grace period over: cancelling in-flight reconciles");
    hardStop.abort();
  }
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
