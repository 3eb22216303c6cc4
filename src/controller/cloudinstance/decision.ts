import type { CloudInstanceStatus, Phase } from "../../api/index.ts";
import type { Capability, ObservedMachine } from "../../providers/driver.ts";
import { getCondition, setCondition, type ConditionUpdate } from "../conditions.ts";
import type { ResolvedSpec } from "./resolve.ts";

/** What the provider told us about the object's VM before deciding. */
export type Observation =
  | { kind: "found"; machine: ObservedMachine; duplicates?: ObservedMachine[] }
  /** The provider confirmed there is no VM (by id, or by owner lookup). */
  | { kind: "absent" }
  /** A create may have happened before a crash and the provider cannot look VMs up by owner. */
  | { kind: "unverifiable"; since: string }
  /**
   * Deletion's first pass: the VM's id is known and nothing was asked yet — the delete call
   * itself tells (a VM already gone counts as deleted), which saves a read per VM.
   */
  | { kind: "unobserved"; id: string };

export type InstanceAction =
  | { type: "Create" }
  | { type: "Start" }
  | { type: "Stop"; hard: boolean }
  | { type: "Resize"; plan: string }
  | { type: "Rebuild"; image: string }
  | { type: "SetTags"; tags: string[] }
  | { type: "Reboot" }
  | { type: "Renew"; message: string }
  | { type: "Delete" }
  | { type: "RemoveFinalizer" };

export interface DecisionEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** The reconciler's clocks and limits (flags; resyncMs per object from its poll-interval). */
export interface InstanceTiming {
  pollInitialMs: number;
  pollMaxMs: number;
  resyncMs: number;
  hardStopAfterMs: number;
  /** Sends of one action on an unchanged VM before the no-progress guard stops it. */
  noProgressLimit: number;
  /** How long a provider status no driver table knows is waited on before it is reported. */
  unknownStatusAfterMs: number;
}

export interface DecideInput {
  generation: number | undefined;
  deleting: boolean;
  status: CloudInstanceStatus;
  spec: ResolvedSpec;
  observation: Observation;
  capabilities: ReadonlySet<Capability>;
  /** Adopted through the external-id annotation: never create, never recreate. */
  adopted: boolean;
  /** The object's UID: a VM marked with another one belongs to someone else. */
  uid: string;
  /** The force-adopt annotation: take over a VM marked as another object's. */
  forceAdopt: boolean;
  now: number;
  timing: InstanceTiming;
  /** The reconcile-requested-at annotation's value, when set. */
  reconcileRequestedAt: string | undefined;
  /** The restart-requested-at annotation's value, when set: a new value reboots the VM once. */
  restartRequestedAt: string | undefined;
  /** 0..1, spreads resyncs so 10,000 objects do not poll at the same instant. */
  jitter: number;
  /**
   * How long this process has watched the VM stay in a graceful stop, on its own monotonic
   * clock (undefined: not watching). A power-off is never decided from a time another replica
   * wrote with its own, possibly skewed, wall clock.
   */
  stoppingForMs: number | undefined;
}

export interface Decision {
  /** The one provider call (or finalizer removal) this pass makes; none while waiting or done. */
  action?: InstanceAction;
  status: CloudInstanceStatus;
  events: DecisionEvent[];
  requeueAfterMs: number | undefined;
}

/** Poll a transitional VM: starts at pollInitial and roughly doubles with the time spent waiting. */
export function pollDelay(status: CloudInstanceStatus, now: number, t: DecideInput["timing"]): number {
  const since = getCondition(status.conditions, "Ready")?.lastTransitionTime;
  const waited = since === undefined ? 0 : Math.max(0, now - Date.parse(since));
  return Math.min(t.pollMaxMs, Math.max(t.pollInitialMs, Math.round(waited / 2)));
}

/** The steady-state resync, spread ±10 %. */
export function resyncDelay(input: DecideInput): number {
  return Math.round(input.timing.resyncMs * (0.9 + 0.2 * input.jitter));
}

export function observedFields(m: ObservedMachine): CloudInstanceStatus {
  return {
    instanceID: m.id,
    providerStatus: m.providerStatus,
    addresses: { public: [...m.addresses.public], private: [...m.addresses.private] },
    ...(m.plan === undefined ? {} : { plan: m.plan }),
    ...(m.image === undefined ? {} : { image: m.image }),
    ...(m.region === undefined ? {} : { region: m.region }),
    ...(m.tags === undefined ? {} : { tags: [...m.tags] }),
    ...(m.usage === undefined ? {} : { usage: { ...m.usage } }),
  };
}

/** Keeps only what is not observed from the provider (bookkeeping, conditions, echoes). */
export function carried(status: CloudInstanceStatus): CloudInstanceStatus {
  const out: CloudInstanceStatus = {};
  if (status.providerData !== undefined) out.providerData = status.providerData;
  if (status.conditions !== undefined) out.conditions = status.conditions;
  if (status.lastHandledReconcileAt !== undefined) out.lastHandledReconcileAt = status.lastHandledReconcileAt;
  if (status.lastHandledRestartAt !== undefined) out.lastHandledRestartAt = status.lastHandledRestartAt;
  if (status.lastAction !== undefined) out.lastAction = status.lastAction;
  if (status.connectionSecret !== undefined) out.connectionSecret = status.connectionSecret;
  if (status.price !== undefined) out.price = status.price;
  if (status.instanceID !== undefined) out.instanceID = status.instanceID;
  return out;
}

/** Builds the next status: conditions stamped with one `now` and the generation decided for. */
export class StatusBuilder {
  status: CloudInstanceStatus;
  readonly #now: string;
  readonly #generation: number | undefined;
  constructor(base: CloudInstanceStatus, now: number, generation: number | undefined) {
    this.status = base;
    this.#now = new Date(now).toISOString();
    this.#generation = generation;
    if (generation !== undefined) this.status.observedGeneration = generation;
  }
  set(type: string, status: ConditionUpdate["status"], reason: string, message: string): this {
    this.status.conditions = setCondition(
      this.status.conditions,
      { type, status, reason, message },
      this.#now,
      this.#generation,
    );
    return this;
  }
  /** Ready and Synced both False for one reason: the common way a pass ends short of the spec. */
  blocked(reason: string, message: string): this {
    return this.set("Ready", "False", reason, message).set("Synced", "False", reason, message);
  }
}

/** A decision that writes status and does nothing else. */
export function only(
  b: StatusBuilder,
  events: DecisionEvent[],
  requeueAfterMs: number | undefined,
): Decision {
  return { status: b.status, events, requeueAfterMs };
}

export function describeAction(a: InstanceAction): string {
  switch (a.type) {
    case "Create":
      return "creating the VM";
    case "Start":
      return "starting the VM";
    case "Stop":
      return a.hard ? "powering the VM off" : "stopping the VM";
    case "Resize":
      return `resizing to plan ${a.plan}`;
    case "Rebuild":
      return `rebuilding with image ${a.image}`;
    case "SetTags":
      return `setting tags [${a.tags.join(", ")}]`;
    case "Reboot":
      return "restarting the VM";
    case "Renew":
      return `renewing the prepaid lease (${a.message})`;
    case "Delete":
      return "deleting the VM";
    case "RemoveFinalizer":
      return "removing the finalizer";
  }
}

export function actionReason(a: InstanceAction): string {
  return {
    Create: "Creating",
    Start: "Starting",
    Stop: "Stopping",
    Resize: "Resizing",
    Rebuild: "Rebuilding",
    SetTags: "TaggingVM",
    Reboot: "Restarting",
    Renew: "Renewing",
    Delete: "Deleting",
    RemoveFinalizer: "FinalizerRemoved",
  }[a.type];
}

/** Status for a reconcile that could not reach the provider or could not start (bad spec, missing Secret, provider error). */
export function errorStatus(
  current: CloudInstanceStatus,
  failure: { reason: string; message: string },
  now: number,
  generation: number | undefined,
  phase?: Phase,
): CloudInstanceStatus {
  const b = new StatusBuilder({ ...current }, now, generation);
  if (phase !== undefined) b.status.phase = phase;
  else if (b.status.phase === undefined) b.status.phase = "Pending";
  b.set("Synced", "False", failure.reason, failure.message);
  const readyStays =
    b.status.instanceID !== undefined &&
    getCondition(b.status.conditions, "Ready")?.status === "True" &&
    phase === undefined;
  // With a VM that was Ready, Ready stays as last observed: the VM may well be fine.
  if (b.status.instanceID === undefined) b.set("Provisioned", "False", failure.reason, failure.message);
  if (!readyStays) b.set("Ready", "False", failure.reason, failure.message);
  return b.status;
}

/**
 * An adopted VM that carries another object's ownership mark: adopting it would let one
 * tenant stop, resize or delete another's VM, so it is refused unless forced.
 */
export function foreignOwner(input: DecideInput): string | undefined {
  if (!input.adopted || input.forceAdopt || input.observation.kind !== "found") return undefined;
  const owner = input.observation.machine.ownerUID;
  return owner !== undefined && owner !== input.uid ? owner : undefined;
}

export function unverifiableMessage(since: string, provider: string): string {
  return (
    `a create request was sent at ${since} but its VM id was never recorded, and ${provider} cannot look VMs up by owner; ` +
    `check the provider: set the annotation compute.instance-operator.dev/external-id to adopt the VM, ` +
    `or remove compute.instance-operator.dev/create-pending to create a new one`
  );
}

export const allows = (spec: ResolvedSpec, policy: ResolvedSpec["managementPolicies"][number]): boolean =>
  spec.managementPolicies.includes(policy);
