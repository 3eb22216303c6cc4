import type { Condition } from "../api/index.ts";
import { capMessage } from "../util/cap-message.ts";

export interface ConditionUpdate {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

/**
 * Sets one condition the way metav1 does: lastTransitionTime moves only when the status
 * flips, so watchers and `kubectl wait` see a stable timestamp; returns a new array. The
 * message is capped (MAX_MESSAGE_BYTES).
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: string,
  observedGeneration: number | undefined,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === update.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    ...update,
    message: capMessage(update.message),
    lastTransitionTime: prev && prev.status === update.status ? prev.lastTransitionTime : now,
    ...(observedGeneration === undefined ? {} : { observedGeneration }),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function getCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === "True";
}
