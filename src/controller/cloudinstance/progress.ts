import { hash } from "node:crypto";
import type { CloudInstanceStatus } from "../../api/index.ts";
import type { Observation } from "./decision.ts";

/** One mutating action as the guard tells repeats apart: its type and what it asks for. */
export type ActionKey = string;

export type LastAction = NonNullable<CloudInstanceStatus["lastAction"]>;

export interface GuardInput {
  last: LastAction | undefined;
  key: ActionKey;
  observation: Observation;
  generation: number | undefined;
  /** The user asked for a fresh attempt (a new reconcile-requested-at value). */
  requested: boolean;
  now: number;
  /** Sends of the same action on the same observation before giving up (the --no-progress-limit flag). */
  limit: number;
  pollInitialMs: number;
  pollMaxMs: number;
}

export type GuardVerdict =
  /** Send it; `lastAction` is what status records of this send. */
  | { kind: "send"; lastAction: LastAction }
  /** Sent recently on this same observation: the provider may not have started yet; look again later. */
  | { kind: "wait"; afterMs: number }
  /** Sent `limit` times and nothing moved: stop sending until something changes. */
  | { kind: "stuck"; afterMs: number; attempts: number };

/**
 * What the VM looked like when an action was sent, as a short digest: the guard compares it,
 * never reads it, and status stays small whatever the VM's tags.
 */
export function fingerprint(observation: Observation): string {
  let seen: unknown;
  switch (observation.kind) {
    case "found": {
      const m = observation.machine;
      seen = [m.id, m.phase, m.providerStatus, m.transitional, m.plan, m.image, [...(m.tags ?? [])].sort()];
      break;
    }
    case "unobserved":
      seen = ["unobserved", observation.id];
      break;
    default:
      seen = [observation.kind];
  }
  // One-shot hash(): the same digest as createHash().update().digest() without a Hash object
  // per call (fingerprints are taken on every guarded action).
  return hash("sha256", JSON.stringify(seen), "base64url").slice(0, 16);
}

/**
 * The no-progress guard. A provider that accepts a request and then does nothing (a tags API
 * that answers 404 as "done", a plan the driver reads under another name, a start that never
 * starts) would otherwise get the same mutating call every poll, forever. Repeats of the same
 * action on the same observation and generation are spaced exponentially (the provider may be
 * slow to show the change) and stop after `limit` sends. A new generation, a new
 * reconcile-requested-at value or a changed observation starts the count again.
 */
export function guardAction(g: GuardInput): GuardVerdict {
  const seen = fingerprint(g.observation);
  const last = g.last;
  const repeat =
    last !== undefined &&
    !g.requested &&
    last.action === g.key &&
    last.generation === (g.generation ?? 0) &&
    last.observation === seen;
  const sent = (attempts: number): GuardVerdict => ({
    kind: "send",
    lastAction: {
      action: g.key,
      generation: g.generation ?? 0,
      attempts,
      observation: seen,
      time: new Date(g.now).toISOString(),
    },
  });
  if (!repeat) return sent(1);
  const waited = Math.max(0, g.now - Date.parse(last.time));
  if (last.attempts >= g.limit) {
    // Keep observing (reads are cheap and show when someone fixes it), ever more slowly.
    return {
      kind: "stuck",
      afterMs: Math.min(g.pollMaxMs, Math.max(g.pollInitialMs, waited)),
      attempts: last.attempts,
    };
  }
  // A provider may take a poll period or two to show that it started (MOS keeps showing
  // `running` through a 30 s soft stop): repeats wait at least a poll maximum, doubling.
  const spacing = g.pollMaxMs * Math.min(8, 2 ** (last.attempts - 1));
  if (waited < spacing) return { kind: "wait", afterMs: spacing - waited };
  return sent(last.attempts + 1);
}
