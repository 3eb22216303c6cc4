import { AsyncLocalStorage } from "node:async_hooks";
import type { RequestLimiter } from "../../util/transport/limiter.ts";

/**
 * What an admitted reconcile carries to every provider request it makes, without a driver
 * passing anything: a hook that tells the account's gate which limiter the request uses (so
 * the gate learns the account's budget), counts the call against the reconcile's reservation
 * and answers how long the request may wait in that limiter before it is refused (the
 * reconcile then requeues instead of holding a worker).
 */
export interface AdmissionScope {
  /**
   * Called as each request starts; returns how long it may wait in `limiter` (ms), undefined
   * for its turn however long (after a mutation: a reconcile that has changed a VM finishes
   * rather than leave the provider's state ambiguous).
   */
  onRequest(limiter: RequestLimiter, mutating: boolean): number | undefined;
}

export const admissionScope = new AsyncLocalStorage<AdmissionScope>();
