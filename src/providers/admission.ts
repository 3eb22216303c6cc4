import type { RequestLimiter } from "../util/transport/limiter.ts";
import { admissionScope, type AdmissionScope } from "./http/admission-scope.ts";
import { Fifo } from "../util/fifo.ts";
import { MinHeap } from "../util/min-heap.ts";

/**
 * Fairness between accounts (issue #22): all accounts share the controller's workers, so no
 * worker may wait inside one account's rate limiter or on one account's slow endpoint. Before
 * a reconcile spends provider calls it asks its account's gate; when the account has no
 * budget (its limiter has not the tokens the reconcile is expected to need, after those
 * already promised to reconciles in flight) or already runs its share of reconciles, the
 * object is requeued for when the account will have — and the worker moves on.
 */

/** What one of the account's limiters says now. */
export interface BudgetView {
  /** Tokens in the bucket (fractional). */
  available: number;
  /** Requests queued in the limiter by callers outside any admission (they come first). */
  waiting: number;
  qps: number;
  burst: number;
}

export interface AdmissionFacts {
  /** Monotonic ms. */
  now: number;
  /** Reconciles of this account admitted and not yet finished. */
  inFlight: number;
  /** --provider-max-inflight-per-account. */
  cap: number;
  /** Keys of this account already waiting for a slot, ahead of this one. */
  parkedAhead: number;
  /** Reconciles in flight across every account (the workers they hold). */
  allInFlight: number;
  /**
   * Borrowing: an account past its cap may still be admitted while fewer than this many
   * reconciles run in all — a cap's worth of workers always stays free for other accounts —
   * and only if its reconciles are quick (avgReconcileMs ≤ borrowMaxMs): a worker it holds is
   * back soon. A slow endpoint never holds more than its cap. 0: no borrowing.
   */
  borrowLimit: number;
  borrowMaxMs: number;
  /** Every limiter the account's requests have gone through (none known yet: no budget check). */
  budgets: readonly BudgetView[];
  /** Tokens promised to admitted reconciles and not yet taken. */
  committed: number;
  /** Provider calls a reconcile of this account makes, on average (at least 1). */
  expectedCalls: number;
  /** How long a reconcile of this account takes, on average (ms). */
  avgReconcileMs: number;
  /**
   * Budget pacing: the earliest time a key refused for budget may come back, so refused keys
   * return one by one as tokens refill, not all at once (no retry storm).
   */
  nextAt: number;
  /** The shortest requeue (ms). */
  minDelayMs: number;
  /** The longest requeue of a key waiting for a slot (ms): its fallback if no wake comes. */
  maxParkMs: number;
}

export type AdmissionDecision =
  | { admit: true; reserve: number }
  | {
      admit: false;
      reason: "budget" | "inflight";
      retryAfterMs: number;
      nextAt: number;
      /** Budget: when the missing tokens will be there (ms) — the gate wakes a waiting key then. */
      tokensInMs?: number;
    };

/**
 * Pure: admit now, or how long until this account is expected to have room for one more.
 * - No free slot (its share taken, and no borrowing: see `borrowLimit`): the key is woken by the gate when a slot frees (work-conserving); the delay
 *   returned is only the fallback, generous (twice the expected turn of the keys ahead).
 * - No budget: back when the missing tokens have refilled, paced one token apart (an
 *   optimistic pace: a key back too early costs one cheap refusal; one back too late leaves
 *   the account's budget unused).
 */
export function decideAdmission(f: AdmissionFacts): AdmissionDecision {
  const mayBorrow = f.allInFlight < f.borrowLimit && f.avgReconcileMs <= f.borrowMaxMs;
  if (f.inFlight >= f.cap && !mayBorrow) {
    const turnMs = f.avgReconcileMs / Math.max(1, f.cap);
    const fallback = f.minDelayMs + 2 * (f.parkedAhead + 1) * turnMs;
    return {
      admit: false,
      reason: "inflight",
      retryAfterMs: Math.ceil(Math.min(f.maxParkMs, Math.max(f.minDelayMs, fallback))),
      nextAt: f.nextAt,
    };
  }
  let waitMs = 0;
  let spacingMs = 0;
  let short = false;
  let reserve = 1;
  for (const b of f.budgets) {
    const need = Math.max(1, Math.min(Math.ceil(f.expectedCalls), Math.floor(b.burst)));
    reserve = Math.max(reserve, need);
    const free = b.available - b.waiting - f.committed;
    if (free >= need) continue;
    short = true;
    waitMs = Math.max(waitMs, ((need - free) / b.qps) * 1000);
    spacingMs = Math.max(spacingMs, 1000 / b.qps);
  }
  if (!short) return { admit: true, reserve };
  const at = Math.max(f.now + Math.max(f.minDelayMs, waitMs), f.nextAt);
  return {
    admit: false,
    reason: "budget",
    retryAfterMs: Math.max(f.minDelayMs, Math.ceil(at - f.now)),
    nextAt: at + spacingMs,
    tokensInMs: Math.max(1, Math.ceil(waitMs)),
  };
}

export interface GateOptions {
  /** Reconciles of one account in flight at once. */
  maxInFlight: number;
  /**
   * How long an admitted reconcile's request may wait in the account's limiter before it is
   * refused and the reconcile requeued (ms). Small: a token due that soon costs less to wait
   * for than a requeue (a timer, a queue round trip, a second read of the caches).
   */
  maxWaitMs?: number;
  /** Shortest requeue, ms. */
  minDelayMs?: number;
  /** Longest fallback requeue of a key waiting for a slot, ms. */
  maxParkMs?: number;
  /**
   * Shared by every account's gate: reconciles admitted in all, and how many of the workers
   * accounts may fill by borrowing past their cap (workers − cap; 0 or unset: none).
   */
  shared?: SharedWorkers;
  /** Only accounts whose reconciles average at most this long may borrow (ms). */
  borrowMaxMs?: number;
  /** Monotonic ms. */
  now?: () => number;
}

/** The workers every account's gate shares. */
export class SharedWorkers {
  inFlight = 0;
  readonly borrowLimit: number;
  constructor(workers: number, perAccountCap: number) {
    this.borrowLimit = Math.max(0, workers - perAccountCap);
  }
}

export const DEFAULT_ADMITTED_WAIT_MS = 5;
const DEFAULT_BORROW_MAX_MS = 1000;
const DEFAULT_MIN_DELAY_MS = 20;
const DEFAULT_MAX_PARK_MS = 60_000;
/** Before the first reconcile is measured. */
const INITIAL_RECONCILE_MS = 200;
/** Weight of the newest sample in the running averages. */
const EWMA = 0.2;

export interface Ticket {
  /** Runs `fn` with this admission: its provider requests never wait long in a limiter. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * A request of this reconcile was refused by the limiter after all (a caller outside any
   * admission took the tokens, every slot was busy, or the reconcile needed more calls than
   * expected). Returns the requeue delay — the limiter's own estimate when it has one, else
   * a reconcile's average length; the account then expects reconciles to need at least as
   * many calls as this one reached.
   */
  refused(limiterWaitMs: number | undefined): number;
  /** Ends the admission (every path: success, error, throttled). Idempotent. */
  release(): void;
}

/** Who is asking: a key the gate may wake (requeue at once) when a slot frees. */
export interface Asker {
  key: string;
  wake: (key: string) => void;
}

/** A key in an account's line: `seq` is its place, kept while it stays in line. */
interface Parked {
  key: string;
  wake: (key: string) => void;
  seq: number;
  woken: boolean;
  wokenAt: number;
}

export type Admission =
  | { admitted: true; ticket: Ticket }
  | { admitted: false; reason: "budget" | "inflight"; retryAfterMs: number };

/** One account's gate: shared by every reconcile of the objects that use the account. */
export class AccountGate {
  readonly #o: Required<Omit<GateOptions, "shared">>;
  readonly #shared: SharedWorkers;
  readonly #limiters = new Set<RequestLimiter>();
  #inFlight = 0;
  #committed = 0;
  #expectedCalls = 1;
  #avgMs = INITIAL_RECONCILE_MS;
  #nextAt = 0;
  /** Keys waiting for a slot (woken or not), first come first woken, with how to wake each. */
  readonly #parked = new Map<string, Parked>();
  /**
   * The keys not woken, by place in line. Waking walked the whole line past every key already
   * woken (at 100,000 objects, a thousand per account waiting in the work queue to come back):
   * a heap finds the next in O(log n). Items whose key was woken, admitted or parked anew since
   * are stale and skipped when they come up.
   */
  readonly #line = new MinHeap<Parked>();
  /**
   * Woken keys in the order they were woken: those never back leave after maxParkMs. A key
   * woken twice is here twice; both judge it by its latest wake.
   */
  readonly #wokenOrder = new Fifo<Parked>();
  #seq = 0;
  #tokenTimer: NodeJS.Timeout | undefined;

  constructor(opts: GateOptions) {
    this.#o = {
      maxInFlight: Math.max(1, opts.maxInFlight),
      maxWaitMs: opts.maxWaitMs ?? DEFAULT_ADMITTED_WAIT_MS,
      minDelayMs: opts.minDelayMs ?? DEFAULT_MIN_DELAY_MS,
      maxParkMs: opts.maxParkMs ?? DEFAULT_MAX_PARK_MS,
      borrowMaxMs: opts.borrowMaxMs ?? DEFAULT_BORROW_MAX_MS,
      now: opts.now ?? (() => performance.now()),
    };
    this.#shared = opts.shared ?? new SharedWorkers(0, 0);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get expectedCalls(): number {
    return this.#expectedCalls;
  }

  /** Keys waiting in line (for a slot or for budget), woken or not. */
  get parked(): number {
    return this.#parked.size;
  }

  tryAdmit(asker?: Asker): Admission {
    const now = this.#o.now();
    // A refused key waits in line; one woken and refused again keeps its place (it is next).
    const inLine = asker && this.#parked.get(asker.key);
    // Into the heap only if refused: an admitted key would leave a stale item behind.
    let toLine: Parked | undefined;
    if (inLine) {
      if (inLine.woken) toLine = inLine;
      inLine.woken = false;
    } else if (asker) {
      toLine = { key: asker.key, wake: asker.wake, seq: this.#seq++, woken: false, wokenAt: 0 };
      this.#parked.set(asker.key, toLine);
    }
    const decision = decideAdmission({
      now,
      inFlight: this.#inFlight,
      cap: this.#o.maxInFlight,
      parkedAhead: Math.max(0, this.#parked.size - 1),
      allInFlight: this.#shared.inFlight,
      borrowLimit: this.#shared.borrowLimit,
      borrowMaxMs: this.#o.borrowMaxMs,
      budgets: [...this.#limiters].map((l) => ({
        available: l.available(),
        waiting: l.waiting,
        qps: l.qps,
        burst: l.burst,
      })),
      committed: this.#committed,
      expectedCalls: this.#expectedCalls,
      avgReconcileMs: this.#avgMs,
      nextAt: this.#nextAt,
      minDelayMs: this.#o.minDelayMs,
      maxParkMs: this.#o.maxParkMs,
    });
    if (!decision.admit) {
      if (toLine) this.#line.push(toLine.seq, toLine);
      this.#nextAt = decision.nextAt;
      if (decision.tokensInMs !== undefined) this.#wakeWhenTokens(decision.tokensInMs);
      return { admitted: false, reason: decision.reason, retryAfterMs: decision.retryAfterMs };
    }
    if (asker) this.#parked.delete(asker.key);
    return { admitted: true, ticket: this.#admit(now, decision.reserve) };
  }

  /** An admitted reconcile's ticket: its slot, its reserved calls, and what it learns on release. */
  #admit(startedAt: number, reserve: number): Ticket {
    this.#inFlight++;
    this.#shared.inFlight++;
    let reserved = reserve;
    this.#committed += reserved;
    // Room may be left (slots, tokens): the next key in line tries too, at once.
    this.#wakeNext();
    let calls = 0;
    let released = false;
    let refused = false;
    let mutated = false;
    const scope: AdmissionScope = {
      onRequest: (limiter, mutating) => {
        this.#limiters.add(limiter);
        calls++;
        if (reserved > 0) {
          reserved--;
          this.#committed--;
        }
        // Once a request may have changed something at the provider (any verb but GET and
        // HEAD; some APIs read with POST, which only makes this cautious), the reconcile runs
        // to its end: a refusal now would leave a create or a delete to be settled by reads.
        const wasMutating = mutated;
        mutated ||= mutating;
        if (wasMutating) return undefined;
        // A reconcile that needs more calls than the bucket can ever hold could never finish
        // on refusals alone: past the burst it may wait one token's time (bounded), no more.
        return calls > Math.floor(limiter.burst)
          ? this.#o.maxWaitMs + Math.ceil(1000 / limiter.qps)
          : this.#o.maxWaitMs;
      },
    };
    return {
      run: (fn) => admissionScope.run(scope, fn),
      refused: (limiterWaitMs) => {
        refused = true;
        // Not behind the line of refused keys: this one was admitted, its turn is now, and
        // such refusals are bounded by the reconciles in flight (no storm to pace).
        return Math.ceil(Math.max(this.#o.minDelayMs, limiterWaitMs ?? this.#avgMs));
      },
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
        this.#shared.inFlight--;
        this.#committed -= reserved;
        reserved = 0;
        const ms = this.#o.now() - startedAt;
        this.#avgMs += EWMA * (ms - this.#avgMs);
        if (calls > 0) this.#expectedCalls += EWMA * (calls - this.#expectedCalls);
        // Cut short by a refusal: the next admission waits for the budget this one lacked.
        if (refused) this.#expectedCalls = Math.max(this.#expectedCalls, calls);
        this.#expectedCalls = Math.max(1, this.#expectedCalls);
        this.#wakeNext();
      },
    };
  }

  /** One timer per gate: when the tokens a refused key lacked are there, the first in line is woken. */
  #wakeWhenTokens(ms: number): void {
    if (this.#tokenTimer !== undefined) return;
    this.#tokenTimer = setTimeout(() => {
      this.#tokenTimer = undefined;
      this.#wakeNext();
    }, ms);
    this.#tokenTimer.unref();
  }

  #mayBorrow(): boolean {
    return this.#shared.inFlight < this.#shared.borrowLimit && this.#avgMs <= this.#o.borrowMaxMs;
  }

  /** A slot is free: the first key waiting for one is requeued now (its fallback timer replaced). */
  #wakeNext(): void {
    if (this.#inFlight >= this.#o.maxInFlight && !this.#mayBorrow()) return;
    const now = this.#o.now();
    this.#forgetNeverBack(now);
    for (let entry = this.#line.pop(); entry !== undefined; entry = this.#line.pop()) {
      if (this.#parked.get(entry.key) !== entry || entry.woken) continue;
      entry.woken = true;
      entry.wokenAt = now;
      this.#wokenOrder.push(entry);
      entry.wake(entry.key);
      return;
    }
  }

  /** Keys woken more than maxParkMs ago and never back (their objects deleted): out of the line. */
  #forgetNeverBack(now: number): void {
    for (let entry = this.#wokenOrder.peek(); entry !== undefined; entry = this.#wokenOrder.peek()) {
      const waiting = this.#parked.get(entry.key) === entry && entry.woken;
      if (waiting && now - entry.wokenAt <= this.#o.maxParkMs) return;
      this.#wokenOrder.shift();
      if (waiting) this.#parked.delete(entry.key);
    }
  }
}
