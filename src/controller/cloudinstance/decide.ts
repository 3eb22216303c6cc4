import type { CloudInstanceStatus, Phase } from "../../api/index.ts";
import type { Capability, ObservedMachine } from "../../providers/driver.ts";
import { getCondition, setCondition, type ConditionUpdate } from "../conditions.ts";
import type { ResolvedSpec } from "./resolve.ts";
import { guardAction, type ActionKey } from "./progress.ts";

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
  | { type: "Delete" }
  | { type: "RemoveFinalizer" };

export interface DecisionEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
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
  timing: {
    pollInitialMs: number;
    pollMaxMs: number;
    resyncMs: number;
    hardStopAfterMs: number;
    /** Sends of one action on an unchanged VM before the no-progress guard stops it. */
    noProgressLimit: number;
    /** How long a provider status no driver table knows is waited on before it is reported. */
    unknownStatusAfterMs: number;
  };
  /** The reconcile-requested-at annotation's value, when set. */
  reconcileRequestedAt: string | undefined;
  /** 0..1, spreads resyncs so 10,000 objects do not poll at the same instant. */
  jitter: number;
}

export interface Decision {
  actions: InstanceAction[];
  status: CloudInstanceStatus;
  events: DecisionEvent[];
  requeueAfterMs: number | undefined;
}

const CAPABILITY_FOR: Record<string, Capability> = {
  Start: "start",
  Stop: "stop",
  Resize: "resize",
  Rebuild: "rebuild",
  SetTags: "tags",
};

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

/** Poll a transitional VM: starts at pollInitial and roughly doubles with the time spent waiting. */
export function pollDelay(status: CloudInstanceStatus, now: number, t: DecideInput["timing"]): number {
  const since = getCondition(status.conditions, "Ready")?.lastTransitionTime;
  const waited = since === undefined ? 0 : Math.max(0, now - Date.parse(since));
  return Math.min(t.pollMaxMs, Math.max(t.pollInitialMs, Math.round(waited / 2)));
}

function observedFields(m: ObservedMachine): CloudInstanceStatus {
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
function carried(status: CloudInstanceStatus): CloudInstanceStatus {
  const out: CloudInstanceStatus = {};
  if (status.providerData !== undefined) out.providerData = status.providerData;
  if (status.conditions !== undefined) out.conditions = status.conditions;
  if (status.lastHandledReconcileAt !== undefined) out.lastHandledReconcileAt = status.lastHandledReconcileAt;
  if (status.lastAction !== undefined) out.lastAction = status.lastAction;
  if (status.instanceID !== undefined) out.instanceID = status.instanceID;
  return out;
}

class StatusBuilder {
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
}

/**
 * The CloudInstance decision table: from the resolved spec, what the provider reports and
 * the current status, the actions to take (in order) and the status to write. Pure: no I/O,
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
  const action = d.actions[0];
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
  if (verdict.kind === "wait") return { ...d, actions: [], events, requeueAfterMs: verdict.afterMs };
  const observed =
    input.observation.kind === "found"
      ? ` (provider status ${input.observation.machine.providerStatus})`
      : "";
  const message =
    `${describe(action)} was sent ${String(verdict.attempts)} times for generation ${String(input.generation ?? 0)} ` +
    `and the VM did not change${observed}; not sending it again until the spec, the VM or the ` +
    `reconcile-requested-at annotation changes`;
  const b = new StatusBuilder(d.status, input.now, input.generation);
  if (!input.deleting) b.set("Ready", "False", "NoProgress", message);
  const wasStuck = getCondition(input.status.conditions, "Synced")?.reason === "NoProgress";
  b.set("Synced", "False", "NoProgress", message);
  if (!wasStuck) events.push({ type: "Warning", reason: "NoProgress", message });
  return { actions: [], status: b.status, events, requeueAfterMs: verdict.afterMs };
}

/**
 * An adopted VM that carries another object's ownership mark: adopting it would let one
 * tenant stop, resize or delete another's VM, so it is refused unless forced.
 */
function foreignOwner(input: DecideInput): string | undefined {
  if (!input.adopted || input.forceAdopt || input.observation.kind !== "found") return undefined;
  const owner = input.observation.machine.ownerUID;
  return owner !== undefined && owner !== input.uid ? owner : undefined;
}

function adoptionRefusedMessage(id: string): string {
  return (
    `VM ${id} carries another object's ownership mark; it is not adopted (nothing is changed or deleted). ` +
    `Set the annotation compute.instance-operator.dev/force-adopt: "true" to take it over`
  );
}

function decideDeletion(input: DecideInput): Decision {
  const { observation, spec, timing } = input;
  const b = new StatusBuilder(carried(input.status), input.now, input.generation);
  b.status.phase = "Deleting";
  b.set("Ready", "False", "Deleting", "the object is being deleted");
  const poll = (): number => pollDelay(b.status, input.now, timing);

  if (spec.deletionPolicy === "Orphan") {
    return {
      actions: [{ type: "RemoveFinalizer" }],
      status: b.status,
      events: [
        {
          type: "Normal",
          reason: "Orphaned",
          message: `deletionPolicy Orphan: VM ${input.status.instanceID ?? "(none)"} left at the provider`,
        },
      ],
      requeueAfterMs: undefined,
    };
  }
  if (foreignOwner(input) !== undefined && observation.kind === "found") {
    return {
      actions: [{ type: "RemoveFinalizer" }],
      status: b.status,
      events: [
        {
          type: "Normal",
          reason: "AdoptionRefused",
          message: `VM ${observation.machine.id} belongs to another object and is left at the provider`,
        },
      ],
      requeueAfterMs: undefined,
    };
  }
  if (observation.kind === "absent") {
    return {
      actions: [{ type: "RemoveFinalizer" }],
      status: b.status,
      events:
        input.status.instanceID === undefined
          ? []
          : [
              {
                type: "Normal",
                reason: "Deleted",
                message: `VM ${input.status.instanceID} is gone at the provider`,
              },
            ],
      requeueAfterMs: undefined,
    };
  }
  if (observation.kind === "unverifiable") {
    b.set(
      "Synced",
      "False",
      "CreatePendingUnverifiable",
      unverifiableMessage(observation.since, spec.provider.name),
    );
    return { actions: [], status: b.status, events: [], requeueAfterMs: timing.resyncMs };
  }
  if (observation.kind === "unobserved") {
    b.status.instanceID = observation.id;
    b.set("Synced", "True", "Deleting", `deleting VM ${observation.id}`);
    return {
      actions: [{ type: "Delete" }],
      status: b.status,
      events: [{ type: "Normal", reason: "Deleting", message: `deleting VM ${observation.id}` }],
      requeueAfterMs: timing.pollInitialMs,
    };
  }
  const m = observation.machine;
  Object.assign(b.status, observedFields(m));
  b.status.phase = "Deleting";
  // An unknown status is not waited on: delete is sent and its confirmation read as documented.
  const busy = m.transitional && m.phase !== "Running" && m.phase !== "Stopped" && m.unknownStatus !== true;
  if (m.phase === "Deleting" || busy) {
    b.set("Synced", "True", "Deleting", `waiting for the provider to finish (${m.providerStatus})`);
    return { actions: [], status: b.status, events: [], requeueAfterMs: poll() };
  }
  b.set("Synced", "True", "Deleting", `deleting VM ${m.id}`);
  return {
    actions: [{ type: "Delete" }],
    status: b.status,
    events: [{ type: "Normal", reason: "Deleting", message: `deleting VM ${m.id}` }],
    requeueAfterMs: timing.pollInitialMs,
  };
}

function unverifiableMessage(since: string, provider: string): string {
  return (
    `a create request was sent at ${since} but its VM id was never recorded, and ${provider} cannot look VMs up by owner; ` +
    `check the provider: set the annotation compute.instance-operator.dev/external-id to adopt the VM, ` +
    `or remove compute.instance-operator.dev/create-pending to create a new one`
  );
}

function decideLiving(input: DecideInput): Decision {
  const { observation, spec, capabilities, timing } = input;
  const events: DecisionEvent[] = [];
  const prev = input.status;
  const b = new StatusBuilder(carried(prev), input.now, input.generation);
  const poll = (): number => pollDelay(b.status, input.now, timing);
  const resync = Math.round(timing.resyncMs * (0.9 + 0.2 * input.jitter));

  if (observation.kind === "unobserved") {
    // Only deletion asks for this; a living object is always observed first.
    return { actions: [], status: prev, events, requeueAfterMs: timing.pollInitialMs };
  }
  if (observation.kind === "unverifiable") {
    b.status.phase = "Pending";
    b.set("Provisioned", "Unknown", "CreatePendingUnverifiable", "the VM may or may not exist");
    b.set("Ready", "False", "CreatePendingUnverifiable", "the VM may or may not exist");
    b.set(
      "Synced",
      "False",
      "CreatePendingUnverifiable",
      unverifiableMessage(observation.since, spec.provider.name),
    );
    return { actions: [], status: b.status, events, requeueAfterMs: resync };
  }

  if (observation.kind === "absent") {
    if (input.adopted) {
      b.status.phase = "Failed";
      b.set(
        "Provisioned",
        "False",
        "ExternalVMNotFound",
        `adopted VM ${prev.instanceID ?? ""} does not exist at the provider`,
      );
      b.set("Running", "False", "ExternalVMNotFound", "no VM");
      b.set("Ready", "False", "ExternalVMNotFound", "no VM");
      b.set(
        "Synced",
        "False",
        "ExternalVMNotFound",
        `the VM named by the external-id annotation does not exist at ${spec.provider.name}`,
      );
      return { actions: [], status: b.status, events, requeueAfterMs: resync };
    }
    if (prev.instanceID !== undefined) {
      events.push({
        type: "Warning",
        reason: "VMDisappeared",
        message: `VM ${prev.instanceID} no longer exists at the provider; creating a new one`,
      });
    }
    delete b.status.instanceID;
    b.status.phase = "Provisioning";
    b.set("Provisioned", "False", "Creating", `creating a VM at ${spec.provider.name}`);
    b.set("Running", "False", "Creating", "no VM yet");
    b.set("Ready", "False", "Creating", "no VM yet");
    b.set("Synced", "True", "Creating", `creating a VM at ${spec.provider.name}`);
    return { actions: [{ type: "Create" }], status: b.status, events, requeueAfterMs: poll() };
  }

  const m = observation.machine;
  if (foreignOwner(input) !== undefined) {
    // Nothing of the foreign VM goes into this object's status either.
    b.status.phase = "Failed";
    const message = adoptionRefusedMessage(m.id);
    b.set("Provisioned", "False", "AdoptionRefused", message);
    b.set("Ready", "False", "AdoptionRefused", message);
    b.set("Synced", "False", "AdoptionRefused", message);
    return {
      actions: [],
      status: b.status,
      events: [{ type: "Warning", reason: "AdoptionRefused", message }],
      requeueAfterMs: resync,
    };
  }
  Object.assign(b.status, observedFields(m));
  b.status.phase = m.phase;
  if (observation.duplicates && observation.duplicates.length > 0) {
    events.push({
      type: "Warning",
      reason: "DuplicateVMs",
      message: `more VMs carry this object's UID: ${observation.duplicates.map((d) => d.id).join(", ")}; managing ${m.id}, delete the others at the provider`,
    });
  }
  b.set("Provisioned", "True", "Provisioned", `VM ${m.id} exists (${m.providerStatus})`);
  const running = m.phase === "Running" && !m.transitional;
  b.set(
    "Running",
    running ? "True" : "False",
    running ? "Running" : m.phase,
    m.message ?? `provider status ${m.providerStatus}`,
  );

  if (m.phase === "Failed") {
    b.set(
      "Ready",
      "False",
      "ProviderFailed",
      m.message ?? `the provider reports the VM failed (${m.providerStatus})`,
    );
    b.set(
      "Synced",
      "False",
      "ProviderFailed",
      m.message ?? `the provider reports the VM failed (${m.providerStatus})`,
    );
    return { actions: [], status: b.status, events, requeueAfterMs: resync };
  }
  if (m.transitional || m.phase === "Provisioning" || m.phase === "Stopping" || m.phase === "Deleting") {
    if (m.phase === "Stopping" && spec.powerState === "Stopped" && capabilities.has("hardStop")) {
      const since = getCondition(prev.conditions, "Running")?.lastTransitionTime;
      if (since !== undefined && input.now - Date.parse(since) > timing.hardStopAfterMs) {
        b.set("Ready", "False", "Stopping", "graceful stop took too long; powering off");
        b.set("Synced", "True", "Stopping", "powering off");
        return {
          actions: [{ type: "Stop", hard: true }],
          status: b.status,
          events: [
            ...events,
            {
              type: "Warning",
              reason: "HardStop",
              message: `VM ${m.id} did not stop gracefully; powering it off`,
            },
          ],
          requeueAfterMs: poll(),
        };
      }
    }
    const since = getCondition(prev.conditions, "Ready")?.lastTransitionTime;
    const waited = since === undefined ? 0 : input.now - Date.parse(since);
    if (m.unknownStatus === true && waited >= timing.unknownStatusAfterMs) {
      const message = `${spec.provider.name} reports status "${m.providerStatus}", which the operator does not know; waiting for it to change (nothing is sent meanwhile)`;
      b.set("Ready", "False", "UnknownProviderStatus", message);
      b.set("Synced", "False", "UnknownProviderStatus", message);
      if (getCondition(prev.conditions, "Synced")?.reason !== "UnknownProviderStatus")
        events.push({ type: "Warning", reason: "UnknownProviderStatus", message });
      return { actions: [], status: b.status, events, requeueAfterMs: timing.pollMaxMs };
    }
    b.set("Ready", "False", "Converging", `waiting for the provider (${m.providerStatus})`);
    b.set("Synced", "True", "Converging", `waiting for the provider (${m.providerStatus})`);
    return { actions: [], status: b.status, events, requeueAfterMs: poll() };
  }

  // Steady VM: compare with the spec, one change per pass (providers refuse overlapping operations).
  const wasSteady = prev.phase === "Running" || prev.phase === "Stopped";
  const wanted: InstanceAction[] = [];
  let blocked: { reason: string; message: string } | undefined;
  if (spec.image !== undefined && m.image !== undefined && m.image !== spec.image) {
    if (spec.updatePolicy === "AllowRebuild") wanted.push({ type: "Rebuild", image: spec.image });
    else
      blocked = {
        reason: "RebuildRequired",
        message: `image is ${m.image} but spec asks for ${spec.image}; set updatePolicy: AllowRebuild to rebuild the disk (its data is lost)`,
      };
  }
  if (spec.plan !== undefined && m.plan !== undefined && m.plan !== spec.plan) {
    if (wasSteady && prev.plan !== undefined && prev.plan === spec.plan)
      events.push({
        type: "Warning",
        reason: "DriftDetected",
        message: `plan changed outside Kubernetes to ${m.plan}; resizing back to ${spec.plan}`,
      });
    wanted.push({ type: "Resize", plan: spec.plan });
  }
  if (spec.powerState === "Running" && m.phase === "Stopped") {
    if (wasSteady && prev.phase === "Running")
      events.push({
        type: "Warning",
        reason: "DriftDetected",
        message: "VM was stopped outside Kubernetes; starting it",
      });
    wanted.push({ type: "Start" });
  } else if (spec.powerState === "Stopped" && m.phase === "Running") {
    if (wasSteady && prev.phase === "Stopped")
      events.push({
        type: "Warning",
        reason: "DriftDetected",
        message: "VM was started outside Kubernetes; stopping it",
      });
    wanted.push({ type: "Stop", hard: false });
  }
  // A driver that cannot keep tags still owes the user a word when the spec asks for some.
  // An adopted VM without an ownership mark gets one with its tags (drivers mark with a tag).
  const unmarked = input.adopted && m.ownerUID === undefined && capabilities.has("tags");
  if (
    capabilities.has("tags")
      ? (m.tags !== undefined && !sameSet(m.tags, spec.tags)) || unmarked
      : spec.tags.length > 0
  )
    wanted.push({ type: "SetTags", tags: [...spec.tags] });

  const unsupported = wanted.filter((a) => {
    const cap = CAPABILITY_FOR[a.type];
    return cap !== undefined && !capabilities.has(cap);
  });
  const action = wanted.find((a) => !unsupported.includes(a));
  if (unsupported.length > 0 && blocked === undefined) {
    blocked = {
      reason: "Unsupported",
      message: unsupported.map((a) => `${spec.provider.name} does not support ${describe(a)}`).join("; "),
    };
  }
  if (action !== undefined) {
    b.set("Ready", "False", "Converging", describe(action));
    b.set(
      "Synced",
      blocked ? "False" : "True",
      blocked?.reason ?? "Converging",
      blocked?.message ?? describe(action),
    );
    return {
      actions: [action],
      status: b.status,
      events: [
        ...events,
        { type: "Normal", reason: actionReason(action), message: `${describe(action)} (VM ${m.id})` },
      ],
      requeueAfterMs: timing.pollInitialMs,
    };
  }
  if (blocked) {
    b.set("Ready", "False", blocked.reason, blocked.message);
    b.set("Synced", "False", blocked.reason, blocked.message);
    return { actions: [], status: b.status, events, requeueAfterMs: resync };
  }
  b.set(
    "Ready",
    "True",
    "Ready",
    `VM ${m.id} is ${m.phase === "Running" ? "running" : "stopped"} as specified`,
  );
  b.set("Synced", "True", "ReconcileSuccess", "the VM matches the spec");
  return { actions: [], status: b.status, events, requeueAfterMs: resync };
}

function describe(a: InstanceAction): string {
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
    case "Delete":
      return "deleting the VM";
    case "RemoveFinalizer":
      return "removing the finalizer";
  }
}

function actionReason(a: InstanceAction): string {
  return {
    Create: "Creating",
    Start: "Starting",
    Stop: "Stopping",
    Resize: "Resizing",
    Rebuild: "Rebuilding",
    SetTags: "TaggingVM",
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
  if (b.status.instanceID === undefined) {
    b.set("Provisioned", "False", failure.reason, failure.message);
    b.set("Ready", "False", failure.reason, failure.message);
  } else if (getCondition(b.status.conditions, "Ready")?.status === "True" && phase === undefined) {
    // The VM may well be fine; Ready stays as last observed, Synced carries the failure.
  } else {
    b.set("Ready", "False", failure.reason, failure.message);
  }
  return b.status;
}

export { describe as describeAction };
