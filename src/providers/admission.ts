import type { RequestLimiter } from "../util/transport/limiter.ts";
import { admissionScope, type AdmissionScope } from "./http/admission-scope.ts";

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
  /** Every limiter the account's requests have gone through (none known yet: no budget check). */
  budgets: readonly BudgetView[];
  /** Tokens promised to admitted reconciles and not yet taken. */
  committed: number;
  /** Provider calls a reconcile of this account makes, on average (at least 1). */
  expectedCalls: number;
  /** How long a reconcile of this account takes, on average (ms). */
  avgReconcileMs: number;
  /**
   * Pacing: the earliest time a refused reconcile may be asked back, so refused keys come
   * back one by one at the rate the account frees up, not all at once (no retry storm).
   */
  nextAt: number;
  /** The shortest requeue (ms). */
  minDelayMs: number;
}

export type AdmissionDecision =
  | { admit: true; reserve: number }
  | { admit: false; reason: "budget" | "inflight"; retryAfterMs: number; nextAt: number };

/** Pure: admit now, or how long until this account is expected to have room for one more. */
export function decideAdmission(f: AdmissionFacts): AdmissionDecision {
  let waitMs = 0;
  let spacingMs = 0;
  let reason: "budget" | "inflight" | undefined;
  let reserve = 0;
  if (f.inFlight >= f.cap) {
    // A slot frees every avgReconcileMs / cap on average.
    reason = "inflight";
    waitMs = spacingMs = f.avgReconcileMs / Math.max(1, f.cap);
  } else {
    for (const b of f.budgets) {
      const need = Math.max(1, Math.min(Math.ceil(f.expectedCalls), Math.floor(b.burst)));
      reserve = Math.max(reserve, need);
      const free = b.available - b.waiting - f.committed;
      if (free >= need) continue;
      reason = "budget";
      waitMs = Math.max(waitMs, ((need - free) / b.qps) * 1000);
      spacingMs = Math.max(spacingMs, (need / b.qps) * 1000);
    }
  }
  if (reason === undefined) return { admit: true, reserve: Math.max(1, reserve) };
  const at = Math.max(f.now + Math.max(f.minDelayMs, waitMs), f.nextAt);
  return {
    admit: false,
    reason,
    retryAfterMs: Math.max(f.minDelayMs, Math.ceil(at - f.now)),
    nextAt: at + Math.max(f.minDelayMs / 4, spacingMs),
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
  /** Monotonic ms. */
  now?: () => number;
}

export const DEFAULT_ADMITTED_WAIT_MS = 5;
const DEFAULT_MIN_DELAY_MS = 20;
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
   * a reconcile's average length — paced like a refusal at the gate; the account then
   * expects reconciles to need at least as many calls as this one reached.
   */
  refused(limiterWaitMs: number | undefined): number;
  /** Ends the admission (every path: success, error, throttled). Idempotent. */
  release(): void;
}

export type Admission =
  | { admitted: true; ticket: Ticket }
  | { admitted: false; reason: "budget" | "inflight"; retryAfterMs: number };

/** One account's gate: shared by every reconcile of the objects that use the account. */
export class AccountGate {
  readonly #o: Required<GateOptions>;
  readonly #limiters = new Set<RequestLimiter>();
  #inFlight = 0;
  #committed = 0;
  #expectedCalls = 1;
  #avgMs = INITIAL_RECONCILE_MS;
  #nextAt = 0;

  constructor(opts: GateOptions) {
    this.#o = {
      maxInFlight: Math.max(1, opts.maxInFlight),
      maxWaitMs: opts.maxWaitMs ?? DEFAULT_ADMITTED_WAIT_MS,
      minDelayMs: opts.minDelayMs ?? DEFAULT_MIN_DELAY_MS,
      now: opts.now ?? (() => performance.now()),
    };
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get expectedCalls(): number {
    return this.#expectedCalls;
  }

  tryAdmit(): Admission {
    const now = this.#o.now();
    const decision = decideAdmission({
      now,
      inFlight: this.#inFlight,
      cap: this.#o.maxInFlight,
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
    });
    if (!decision.admit) {
      this.#nextAt = decision.nextAt;
      return { admitted: false, reason: decision.reason, retryAfterMs: decision.retryAfterMs };
    }
    this.#inFlight++;
    let reserved = decision.reserve;
    this.#committed += reserved;
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
      admitted: true,
      ticket: {
        run: (fn) => admissionScope.run(scope, fn),
        refused: (limiterWaitMs) => {
          refused = true;
          const at = Math.max(
            this.#o.now() + Math.max(this.#o.minDelayMs, limiterWaitMs ?? this.#avgMs),
            this.#nextAt,
          );
          this.#nextAt = at + Math.max(this.#o.minDelayMs / 4, this.#avgMs / this.#o.maxInFlight);
          return Math.ceil(at - this.#o.now());
        },
        release: () => {
          if (released) return;
          released = true;
          this.#inFlight--;
          this.#committed -= reserved;
          reserved = 0;
          const ms = this.#o.now() - now;
          this.#avgMs += EWMA * (ms - this.#avgMs);
          if (calls > 0) this.#expectedCalls += EWMA * (calls - this.#expectedCalls);
          // Cut short by a refusal: the next admission waits for the budget this one lacked.
          if (refused) this.#expectedCalls = Math.max(this.#expectedCalls, calls);
          this.#expectedCalls = Math.max(1, this.#expectedCalls);
        },
      },
    };
  }
}
