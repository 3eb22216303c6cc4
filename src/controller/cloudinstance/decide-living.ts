import { getCondition } from "../conditions.ts";
import type { ObservedMachine } from "../../providers/driver.ts";
import {
  actionReason,
  allows,
  carried,
  describeAction,
  foreignOwner,
  observedFields,
  only,
  pollDelay,
  resyncDelay,
  StatusBuilder,
  unverifiableMessage,
  type DecideInput,
  type Decision,
  type DecisionEvent,
} from "./decision.ts";
import { planSteady } from "./steady.ts";

/** A CloudInstance that is not being deleted: bring its VM to the spec, one step per pass. */
export function decideLiving(input: DecideInput): Decision {
  const { observation, spec } = input;
  const b = new StatusBuilder(carried(input.status), input.now, input.generation);
  switch (observation.kind) {
    case "unobserved":
      // Only deletion asks for this; a living object is always observed first.
      return { status: input.status, events: [], requeueAfterMs: input.timing.pollInitialMs };
    case "unverifiable":
      b.status.phase = "Pending";
      b.set("Provisioned", "Unknown", "CreatePendingUnverifiable", "the VM may or may not exist");
      b.set("Ready", "False", "CreatePendingUnverifiable", "the VM may or may not exist");
      b.set(
        "Synced",
        "False",
        "CreatePendingUnverifiable",
        unverifiableMessage(observation.since, spec.provider.name),
      );
      return only(b, [], resyncDelay(input));
    case "absent":
      return decideAbsent(input, b);
    case "found": {
      if (foreignOwner(input) !== undefined) {
        // Nothing of the foreign VM goes into this object's status either.
        const message =
          `VM ${observation.machine.id} carries another object's ownership mark; it is not adopted (nothing is changed or deleted). ` +
          `Set the annotation compute.instance-operator.dev/force-adopt: "true" to take it over`;
        b.status.phase = "Failed";
        b.set("Provisioned", "False", "AdoptionRefused", message).blocked("AdoptionRefused", message);
        return only(b, [{ type: "Warning", reason: "AdoptionRefused", message }], resyncDelay(input));
      }
      return decideFound(input, b, observation.machine, observation.duplicates ?? []);
    }
  }
}

function decideAbsent(input: DecideInput, b: StatusBuilder): Decision {
  const { spec, status: prev } = input;
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
    return only(b, [], resyncDelay(input));
  }
  if (!allows(spec, "Create")) {
    const message =
      "managementPolicies has no Create: no VM is made; set the external-id annotation to import an existing one";
    b.status.phase = "Pending";
    b.set("Provisioned", "False", "CreateNotAllowed", message).blocked("CreateNotAllowed", message);
    return only(b, [], resyncDelay(input));
  }
  const events: DecisionEvent[] = [];
  if (prev.instanceID !== undefined)
    events.push({
      type: "Warning",
      reason: "VMDisappeared",
      message: `VM ${prev.instanceID} no longer exists at the provider; creating a new one`,
    });
  delete b.status.instanceID;
  b.status.phase = "Provisioning";
  b.set("Provisioned", "False", "Creating", `creating a VM at ${spec.provider.name}`);
  b.set("Running", "False", "Creating", "no VM yet");
  b.set("Ready", "False", "Creating", "no VM yet");
  b.set("Synced", "True", "Creating", `creating a VM at ${spec.provider.name}`);
  return {
    action: { type: "Create" },
    status: b.status,
    events,
    requeueAfterMs: pollDelay(b.status, input.now, input.timing),
  };
}

function decideFound(
  input: DecideInput,
  b: StatusBuilder,
  m: ObservedMachine,
  duplicates: readonly ObservedMachine[],
): Decision {
  Object.assign(b.status, observedFields(m));
  b.status.phase = m.phase;
  const events: DecisionEvent[] = [];
  if (duplicates.length > 0)
    events.push({
      type: "Warning",
      reason: "DuplicateVMs",
      message: `more VMs carry this object's UID: ${duplicates.map((d) => d.id).join(", ")}; managing ${m.id}, delete the others at the provider`,
    });
  b.set("Provisioned", "True", "Provisioned", `VM ${m.id} exists (${m.providerStatus})`);
  const running = m.phase === "Running" && !m.transitional;
  b.set(
    "Running",
    running ? "True" : "False",
    running ? "Running" : m.phase,
    m.message ?? `provider status ${m.providerStatus}`,
  );
  if (m.phase === "Failed") {
    b.blocked("ProviderFailed", m.message ?? `the provider reports the VM failed (${m.providerStatus})`);
    return only(b, events, resyncDelay(input));
  }
  if (m.transitional || m.phase === "Provisioning" || m.phase === "Stopping" || m.phase === "Deleting")
    return decideTransitional(input, b, m, events);
  return decideSteady(input, b, m, events);
}

/** The provider is busy with the VM: wait (polling), except for a soft stop that takes too long. */
function decideTransitional(
  input: DecideInput,
  b: StatusBuilder,
  m: ObservedMachine,
  events: DecisionEvent[],
): Decision {
  const { spec, status: prev, timing } = input;
  const poll = pollDelay(b.status, input.now, timing);
  // Reported drift stays reported while the provider is busy with the VM.
  if (prev.drift !== undefined) b.status.drift = prev.drift;
  if (
    m.phase === "Stopping" &&
    spec.powerState === "Stopped" &&
    input.capabilities.has("hardStop") &&
    allows(spec, "Update")
  ) {
    if (input.stoppingForMs !== undefined && input.stoppingForMs > timing.hardStopAfterMs) {
      b.set("Ready", "False", "Stopping", "graceful stop took too long; powering off");
      b.set("Synced", "True", "Stopping", "powering off");
      events.push({
        type: "Warning",
        reason: "HardStop",
        message: `VM ${m.id} did not stop gracefully; powering it off`,
      });
      return { action: { type: "Stop", hard: true }, status: b.status, events, requeueAfterMs: poll };
    }
  }
  const since = getCondition(prev.conditions, "Ready")?.lastTransitionTime;
  const waited = since === undefined ? 0 : input.now - Date.parse(since);
  if (m.unknownStatus === true && waited >= timing.unknownStatusAfterMs) {
    const message = `${spec.provider.name} reports status "${m.providerStatus}", which the operator does not know; waiting for it to change (nothing is sent meanwhile)`;
    b.blocked("UnknownProviderStatus", message);
    if (getCondition(prev.conditions, "Synced")?.reason !== "UnknownProviderStatus")
      events.push({ type: "Warning", reason: "UnknownProviderStatus", message });
    return only(b, events, timing.pollMaxMs);
  }
  b.set("Ready", "False", "Converging", `waiting for the provider (${m.providerStatus})`);
  b.set("Synced", "True", "Converging", `waiting for the provider (${m.providerStatus})`);
  return only(b, events, poll);
}

/** A steady VM: compare with the spec and send one change (providers refuse overlapping operations). */
function decideSteady(
  input: DecideInput,
  b: StatusBuilder,
  m: ObservedMachine,
  events: DecisionEvent[],
): Decision {
  const plan = planSteady(input, m, new Date(input.now).toISOString());
  events.push(...plan.events);
  if (plan.drift.length > 0) b.status.drift = plan.drift;
  const { action, blocked } = plan;
  if (action !== undefined) {
    b.set("Ready", "False", "Converging", describeAction(action));
    b.set(
      "Synced",
      blocked ? "False" : "True",
      blocked?.reason ?? "Converging",
      blocked?.message ?? describeAction(action),
    );
    events.push({
      type: "Normal",
      reason: actionReason(action),
      message: `${describeAction(action)} (VM ${m.id})`,
    });
    return { action: action, status: b.status, events, requeueAfterMs: input.timing.pollInitialMs };
  }
  if (blocked) {
    b.blocked(blocked.reason, blocked.message);
    return only(b, events, resyncDelay(input));
  }
  const state = m.phase === "Running" ? "running" : "stopped";
  if (plan.tolerated.length > 0) {
    const fields = plan.tolerated.map((d) => d.field).join(", ");
    const why = allows(input.spec, "Update") ? "driftPolicy Report" : "managementPolicies without Update";
    b.set(
      "Ready",
      "True",
      "Observed",
      `VM ${m.id} is ${state}; ${fields} differ from the spec and are left as they are (${why})`,
    );
    b.set("Synced", "True", "ReconcileSuccess", "the VM is as the spec's policies allow");
  } else {
    b.set("Ready", "True", "Ready", `VM ${m.id} is ${state} as specified`);
    b.set("Synced", "True", "ReconcileSuccess", "the VM matches the spec");
  }
  return only(b, events, resyncDelay(input));
}
