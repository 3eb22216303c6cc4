import type { CloudInstanceStatus } from "../../api/index.ts";
import type { Capability, ObservedMachine } from "../../providers/driver.ts";
import {
  allows,
  describeAction,
  type DecideInput,
  type DecisionEvent,
  type InstanceAction,
} from "./decision.ts";

type Drift = NonNullable<CloudInstanceStatus["drift"]>[number];
export type DriftField = Drift["field"];

/** One way the steady VM differs from the spec, and what would bring it back. */
export interface Difference {
  field: DriftField;
  desired: string;
  observed: string;
  /** Changed at the provider after the VM matched the spec (not a change of the spec). */
  outside: boolean;
  /** The action that brings the VM to the spec; a reason when none may be sent. */
  fix: InstanceAction | { reason: string; message: string };
}

/** What a steady VM needs, after the policies: the one action to send, or why nothing may be. */
export interface SteadyPlan {
  action: InstanceAction | undefined;
  blocked: { reason: string; message: string } | undefined;
  drift: Drift[];
  events: DecisionEvent[];
  /** Differences the policies leave in place (Report, no Update). */
  tolerated: Difference[];
}

const CAPABILITY_FOR: Partial<Record<InstanceAction["type"], Capability>> = {
  Start: "start",
  Stop: "stop",
  Resize: "resize",
  Rebuild: "rebuild",
  SetTags: "tags",
  Reboot: "reboot",
  Renew: "renew",
};

const sorted = (tags: readonly string[]): string => [...tags].sort().join(", ");

/** Every way the VM differs from the spec, in the order they are fixed (one per pass). */
export function differences(input: DecideInput, m: ObservedMachine): Difference[] {
  const { spec, status: prev, capabilities } = input;
  const out: Difference[] = [];
  const wasSteady = prev.phase === "Running" || prev.phase === "Stopped";
  const driftedBefore = (field: DriftField, desired: string): boolean =>
    prev.drift?.some((d) => d.field === field && d.desired === desired) ?? false;
  const outside = (field: DriftField, desired: string, before: string | undefined): boolean =>
    driftedBefore(field, desired) || (wasSteady && before === desired);

  if (spec.image !== undefined && m.image !== undefined && m.image !== spec.image)
    out.push({
      field: "image",
      desired: spec.image,
      observed: m.image,
      outside: outside("image", spec.image, prev.image),
      fix:
        spec.updatePolicy === "AllowRebuild"
          ? { type: "Rebuild", image: spec.image }
          : {
              reason: "RebuildRequired",
              message: `image is ${m.image} but spec asks for ${spec.image}; set updatePolicy: AllowRebuild to rebuild the disk (its data is lost)`,
            },
    });
  if (spec.plan !== undefined && m.plan !== undefined && m.plan !== spec.plan)
    out.push({
      field: "plan",
      desired: spec.plan,
      observed: m.plan,
      outside: outside("plan", spec.plan, prev.plan),
      fix: { type: "Resize", plan: spec.plan },
    });
  const power = m.phase === "Stopped" ? "Stopped" : m.phase === "Running" ? "Running" : undefined;
  if (power !== undefined && power !== spec.powerState)
    out.push({
      field: "powerState",
      desired: spec.powerState,
      observed: power,
      outside: outside("powerState", spec.powerState, prev.phase),
      fix: spec.powerState === "Running" ? { type: "Start" } : { type: "Stop", hard: false },
    });
  // A driver that cannot keep tags still owes the user a word when the spec asks for some;
  // an adopted VM without an ownership mark gets one with its tags (drivers mark with a tag).
  const canTag = capabilities.has("tags");
  const unmarked = input.adopted && m.ownerUID === undefined && canTag;
  const tagsDiffer = m.tags !== undefined && sorted(m.tags) !== sorted(spec.tags);
  if (canTag ? tagsDiffer || unmarked : spec.tags.length > 0)
    out.push({
      field: "tags",
      desired: sorted(spec.tags),
      observed: sorted(m.tags ?? []),
      outside: tagsDiffer && outside("tags", sorted(spec.tags), prev.tags && sorted(prev.tags)),
      fix: { type: "SetTags", tags: [...spec.tags] },
    });
  return out;
}

/**
 * Applies the policies to the differences: what may not be done (no Update, drift only
 * reported, a capability the driver lacks) is reported instead of sent.
 */
export function planSteady(input: DecideInput, m: ObservedMachine, now: string): SteadyPlan {
  const { spec } = input;
  const diffs = differences(input, m);
  const events: DecisionEvent[] = [];
  const drift: Drift[] = [];
  for (const d of diffs.filter((x) => x.outside)) {
    const known = input.status.drift?.find(
      (p) => p.field === d.field && p.desired === d.desired && p.observed === d.observed,
    );
    drift.push({ field: d.field, desired: d.desired, observed: d.observed, since: known?.since ?? now });
    if (!known)
      events.push({
        type: "Warning",
        reason: "DriftDetected",
        message: `${d.field} changed outside Kubernetes to ${d.observed || "(none)"} (spec: ${d.desired || "(none)"}); ${
          spec.driftPolicy === "Report" ? "driftPolicy Report leaves it" : "bringing it back"
        }`,
      });
  }
  const updates = allows(spec, "Update");
  const tolerated = diffs.filter((d) => !updates || (d.outside && spec.driftPolicy === "Report"));
  const acting = diffs.filter((d) => !tolerated.includes(d));
  const reasons = acting.flatMap((d) => ("type" in d.fix ? [] : [d.fix]));
  const wanted = acting.flatMap((d) => ("type" in d.fix ? [d.fix] : []));
  const supported = (a: InstanceAction): boolean => {
    const cap = CAPABILITY_FOR[a.type];
    return cap === undefined || input.capabilities.has(cap);
  };
  // A restart asked for with a new annotation value comes once nothing else can be done.
  const restart = input.restartRequestedAt;
  if (
    restart !== undefined &&
    restart !== input.status.lastHandledRestartAt &&
    updates &&
    m.phase === "Running" &&
    !wanted.some(supported)
  )
    wanted.push({ type: "Reboot" });
  // A prepaid lease about to run out comes first: letting it lapse stops the VM.
  if (m.renewalDue !== undefined && updates) wanted.unshift({ type: "Renew", message: m.renewalDue.message });
  const unsupported = wanted.filter((a) => !supported(a));
  const action = wanted.find(supported);
  let blocked = reasons[0];
  if (blocked === undefined && unsupported.length > 0)
    blocked = {
      reason: "Unsupported",
      message: unsupported
        .map((a) => `${spec.provider.name} does not support ${describeAction(a)}`)
        .join("; "),
    };
  return { action, blocked, drift, events, tolerated };
}
