import { getCondition } from "../conditions.ts";
import { decideDeletion } from "./decide-deletion.ts";
import { decideLiving } from "./decide-living.ts";
import {
  actionReason,
  describeAction,
  StatusBuilder,
  type DecideInput,
  type Decision,
  type InstanceAction,
} from "./decision.ts";
import { guardAction, type ActionKey } from "./progress.ts";

export {
  describeAction,
  errorStatus,
  pollDelay,
  type DecideInput,
  type Decision,
  type DecisionEvent,
  type InstanceAction,
  type Observation,
} from "./decision.ts";

/**
 * The CloudInstance decision table: from the resolved spec, what the provider reports and
 * the current status, the action to take and the status to write. Pure: no I/O,
 * no clock, no randomness of its own, so every row of the table is unit-tested.
 */
export function decide(input: DecideInput): Decision {
  return guarded(input, input.deleting ? decideDeletion(input) : decideLiving(input));
}

function actionKey(a: Exclude<InstanceAction, { type: "RemoveFinalizer" }>): ActionKey {
  switch (a.type) {
    case "Stop":
      return a.hard ? "Stop:hard" : "Stop";
    case "Resize":
      return `Resize:${a.plan}`;
    case "Rebuild":
      return `Rebuild:${a.image}`;
    case "SetTags":
      return `SetTags:${[...a.tags].sort().join(",")}`;
    default:
      return a.type;
  }
}

/**
 * Runs the decided action past the no-progress guard (progress.ts): sends it, holds it back
 * while the provider may still be starting on the last one, or stops it with NoProgress.
 */
function guarded(input: DecideInput, d: Decision): Decision {
  const action = d.action;
  if (action === undefined || action.type === "RemoveFinalizer") {
    if (action !== undefined || getCondition(d.status.conditions, "Ready")?.status === "True")
      delete d.status.lastAction;
    return d;
  }
  const verdict = guardAction({
    last: input.status.lastAction,
    key: actionKey(action),
    observation: input.observation,
    generation: input.generation,
    requested:
      input.reconcileRequestedAt !== undefined &&
      input.reconcileRequestedAt !== input.status.lastHandledReconcileAt,
    now: input.now,
    limit: input.timing.noProgressLimit,
    pollInitialMs: input.timing.pollInitialMs,
    pollMaxMs: input.timing.pollMaxMs,
  });
  if (verdict.kind === "send") {
    d.status.lastAction = verdict.lastAction;
    return d;
  }
  // Not sent this pass: its own "doing X" Event would be untrue.
  const events = d.events.filter((e) => e.reason !== actionReason(action));
  if (verdict.kind === "wait") return { status: d.status, events, requeueAfterMs: verdict.afterMs };
  const observed =
    input.observation.kind === "found"
      ? ` (provider status ${input.observation.machine.providerStatus})`
      : "";
  const message =
    `${describeAction(action)} was sent ${String(verdict.attempts)} times for generation ${String(input.generation ?? 0)} ` +
    `and the VM did not change${observed}; not sending it again until the spec, the VM or the ` +
    `reconcile-requested-at annotation changes`;
  const b = new StatusBuilder(d.status, input.now, input.generation);
  if (!input.deleting) b.set("Ready", "False", "NoProgress", message);
  const wasStuck = getCondition(input.status.conditions, "Synced")?.reason === "NoProgress";
  b.set("Synced", "False", "NoProgress", message);
  if (!wasStuck) events.push({ type: "Warning", reason: "NoProgress", message });
  return { status: b.status, events, requeueAfterMs: verdict.afterMs };
}
