/** What an m2s instance answer says, in the operator's words. */
import { mapState, observedHead, type ObservedMachine, type StateTable } from "../driver.ts";
import type { M2sInstance } from "./api.ts";
import { readMark, userTags } from "./owner.ts";

/**
 * The document names `provisioning` and `running` only; the rest are the usual words (the
 * simulator's strict profile picks from them, see test/sim/m2s). Any other is mapState's
 * unknown status: waited on, reported after a while, never holding a deletion.
 */
export const STATES: StateTable = {
  provisioning: { phase: "Provisioning", transitional: true },
  running: { phase: "Running", transitional: false },
  starting: { phase: "Running", transitional: true },
  stopping: { phase: "Stopping", transitional: true },
  stopped: { phase: "Stopped", transitional: false },
  rebooting: { phase: "Running", transitional: true },
  rebuilding: { phase: "Provisioning", transitional: true },
  resizing: { phase: "Running", transitional: true },
  deleting: { phase: "Deleting", transitional: true },
  error: { phase: "Failed", transitional: false },
  failed: { phase: "Failed", transitional: false },
};

export function observe(vm: M2sInstance): ObservedMachine {
  // A provider's word goes into a condition message: a bounded excerpt of it.
  const mapped = mapState(STATES, vm.status.slice(0, 40), "m2s");
  const mark = readMark(vm.tags ?? []);
  const usage = vm.metrics
    ? {
        ...(vm.metrics.cpu_usage === undefined ? {} : { cpuPercent: vm.metrics.cpu_usage }),
        ...(vm.metrics.memory_usage === undefined ? {} : { memoryPercent: vm.metrics.memory_usage }),
        ...(vm.metrics.disk_usage === undefined ? {} : { diskPercent: vm.metrics.disk_usage }),
      }
    : undefined;
  return {
    ...observedHead(vm.id, vm.status, mapped, mark),
    ...(vm.name === undefined ? {} : { name: vm.name }),
    ...(vm.region === undefined ? {} : { region: vm.region }),
    ...(vm.plan === undefined ? {} : { plan: vm.plan }),
    ...(vm.image === undefined ? {} : { image: vm.image }),
    // No tags field (a list item, a create answer) is "unknown", not "no tags": nothing to fix.
    ...(vm.tags === undefined ? {} : { tags: userTags(vm.tags) }),
    addresses: {
      public: [vm.ip_address, vm.ipv6_address].filter((a): a is string => typeof a === "string" && a !== ""),
      private: typeof vm.private_ip === "string" ? [vm.private_ip] : [],
    },
    ...(usage === undefined ? {} : { usage }),
  };
}
