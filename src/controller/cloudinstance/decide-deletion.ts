import {
  allows,
  carried,
  foreignOwner,
  observedFields,
  only,
  pollDelay,
  StatusBuilder,
  unverifiableMessage,
  type DecideInput,
  type Decision,
  type DecisionEvent,
} from "./decision.ts";

const letGo = (b: StatusBuilder, event: DecisionEvent): Decision => ({
  action: { type: "RemoveFinalizer" },
  status: b.status,
  events: [event],
  requeueAfterMs: undefined,
});

/**
 * A CloudInstance being deleted: delete its VM and let the object go once the provider
 * confirms the VM is gone — unless the VM is to outlive it (Orphan, no Delete policy) or is
 * not its own (an adoption that was refused).
 */
export function decideDeletion(input: DecideInput): Decision {
  const { observation, spec, timing } = input;
  const b = new StatusBuilder(carried(input.status), input.now, input.generation);
  b.status.phase = "Deleting";
  b.set("Ready", "False", "Deleting", "the object is being deleted");
  const vm = input.status.instanceID ?? "(none)";

  if (spec.deletionPolicy === "Orphan")
    return letGo(b, {
      type: "Normal",
      reason: "Orphaned",
      message: `deletionPolicy Orphan: VM ${vm} left at the provider`,
    });
  if (!allows(spec, "Delete"))
    return letGo(b, {
      type: "Normal",
      reason: "Orphaned",
      message: `managementPolicies without Delete: VM ${vm} left at the provider`,
    });
  if (foreignOwner(input) !== undefined && observation.kind === "found")
    return letGo(b, {
      type: "Normal",
      reason: "AdoptionRefused",
      message: `VM ${observation.machine.id} belongs to another object and is left at the provider`,
    });
  switch (observation.kind) {
    case "absent":
      return {
        action: { type: "RemoveFinalizer" },
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
    case "unverifiable":
      b.set(
        "Synced",
        "False",
        "CreatePendingUnverifiable",
        unverifiableMessage(observation.since, spec.provider.name),
      );
      return only(b, [], timing.resyncMs);
    case "unobserved":
      b.status.instanceID = observation.id;
      return deleteVm(b, observation.id, timing.pollInitialMs);
    case "found": {
      const m = observation.machine;
      Object.assign(b.status, observedFields(m));
      // An unknown status is not waited on: delete is sent and its confirmation read as documented.
      const busy =
        m.transitional && m.phase !== "Running" && m.phase !== "Stopped" && m.unknownStatus !== true;
      if (m.phase === "Deleting" || busy) {
        b.set("Synced", "True", "Deleting", `waiting for the provider to finish (${m.providerStatus})`);
        return only(b, [], pollDelay(b.status, input.now, timing));
      }
      return deleteVm(b, m.id, timing.pollInitialMs);
    }
  }
}

function deleteVm(b: StatusBuilder, id: string, requeueAfterMs: number): Decision {
  b.set("Synced", "True", "Deleting", `deleting VM ${id}`);
  return {
    action: { type: "Delete" },
    status: b.status,
    events: [{ type: "Normal", reason: "Deleting", message: `deleting VM ${id}` }],
    requeueAfterMs,
  };
}
