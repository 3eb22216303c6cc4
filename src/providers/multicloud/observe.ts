import {
  mapState,
  observedHead,
  type ObservedMachine,
  type ObservedPhase,
  type OwnedMachine,
  type StateTable,
} from "../driver.ts";
import { InstanceSchema, type Instance } from "./api.ts";
import { catalogueName } from "./catalogue.ts";
import { ownerOf, readMark, type Mark } from "./ownership.ts";
import { DELETED } from "./templates.ts";

const DELETING = 6;

/**
 * jupiter's integer Status (the document shows 1, 3 and 7; the meanings are jupiter's models,
 * see providers/README.md). 5 (deleted) is "gone" and never reaches this table.
 */
const STATUS: Record<number, { phase: ObservedPhase; transitional: boolean; text: string }> = {
  0: { phase: "Provisioning", transitional: true, text: "pending" },
  1: { phase: "Running", transitional: false, text: "success" },
  2: { phase: "Provisioning", transitional: true, text: "uninitialised" },
  3: { phase: "Provisioning", transitional: true, text: "initialising" },
  4: { phase: "Failed", transitional: false, text: "initialisation timed out" },
  [DELETING]: { phase: "Deleting", transitional: true, text: "deleting" },
  7: { phase: "Failed", transitional: false, text: "error" },
  8: { phase: "Running", transitional: false, text: "in service pool" },
};

export const STATES: StateTable = Object.fromEntries(
  Object.entries(STATUS).map(([status, { phase, transitional, text }]) => [
    status,
    {
      phase,
      transitional,
      ...(phase === "Failed" ? { message: `the multi-cloud service reports status ${status}: ${text}` } : {}),
    },
  ]),
);

/**
 * The mark an instance carries: its private template's name, read from the instance row; an
 * instance of a shared template carries it only in jupiter's logs, so what the create
 * recorded stands in for it.
 */
export function markOf(i: Instance, providerData: Readonly<Record<string, string>>): Mark | undefined {
  const name = i.Cluster?.Name;
  return (name === undefined ? undefined : readMark(name)) ?? ownerOf(providerData);
}

/**
 * An instance in the operator's vocabulary. `types` is the backend cloud's catalogue of
 * instance types, to report the plan by its catalogue name; without it no plan is reported.
 */
export function observe(
  i: Instance,
  mark: Mark | undefined,
  types: readonly string[] | undefined,
): ObservedMachine {
  const status = String(i.Status);
  const s = mapState(STATES, status, "multicloud");
  const zone = i.Cluster?.Zone;
  const plan =
    types === undefined
      ? undefined
      : catalogueName(i.InstanceType || undefined, { cpu: i.Cpu, ram: i.Ram }, types);
  return {
    ...observedHead(i.InstanceId, `${status} (${STATUS[i.Status]?.text ?? "unknown"})`, s, mark),
    ...(zone?.RegionName ? { region: zone.RegionName } : i.RegionId ? { region: i.RegionId } : {}),
    ...(plan === undefined ? {} : { plan }),
    ...(i.ImageId ? { image: i.ImageId } : {}),
    addresses: {
      public: i.PublicIpAddress ? [i.PublicIpAddress] : [],
      private: i.PrivateIpAddress ? [i.PrivateIpAddress] : [],
    },
  };
}

/**
 * The instances of the list of every instance whose private template names an owner. Rows are
 * read one by one, so an odd row of another tenant hides nothing but itself; one being deleted
 * is no orphan to act on.
 */
export function ownedRows(rows: readonly unknown[]): OwnedMachine[] {
  return rows.flatMap((row) => {
    const parsed = InstanceSchema.safeParse(row);
    if (!parsed.success || parsed.data.Status === DELETED || parsed.data.Status === DELETING) return [];
    const name = parsed.data.Cluster?.Name;
    const mark = name === undefined ? undefined : readMark(name);
    return mark === undefined
      ? []
      : [{ id: parsed.data.InstanceId, ownerUID: mark.ownerUID, cluster: mark.cluster }];
  });
}
