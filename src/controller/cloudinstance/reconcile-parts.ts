import {
  ANNOTATION_CREATE_PENDING,
  ANNOTATION_EXTERNAL_ID,
  ANNOTATION_POLL_INTERVAL,
  ANNOTATION_RECONCILE_REQUESTED_AT,
  type CloudInstance,
  type CloudInstanceStatus,
} from "../../api/index.ts";
import type { CallContext, DesiredMachine, Driver, MachineRef } from "../../providers/driver.ts";
import { findThrottled, isProviderError, UnsupportedError } from "../../providers/errors.ts";
import { parseDuration } from "../../util/duration.ts";
import { AccessRefusedError } from "../provider-access.ts";
import { ConnectionSecretConflictError } from "./connection-secret.ts";
import type { InstanceAction, Observation } from "./decide.ts";
import { planObservation, type ObservationFacts } from "./observe-plan.ts";
import type { ResolvedSpec } from "./resolve.ts";

/** The pieces of one CloudInstance reconcile that need none of the reconciler's state. */

export interface Failure {
  reason: string;
  message: string;
  terminal: boolean;
  cause?: unknown;
}

export class ReconcileFailure extends Error {
  override readonly name = "ReconcileFailure";
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(failure.message);
    this.failure = failure;
  }
}

export function fromError(err: unknown): Failure {
  if (err instanceof ReconcileFailure) return err.failure;
  if (err instanceof AccessRefusedError || err instanceof ConnectionSecretConflictError)
    return { reason: err.reason, message: err.message, terminal: true };
  if (isProviderError(err))
    return { reason: err.reason, message: err.message, terminal: err.terminal, cause: err };
  const message = err instanceof Error ? err.message : String(err);
  return { reason: "ReconcileError", message, terminal: false, cause: err };
}

/**
 * Sends one decided action (not Create/RemoveFinalizer) to the driver, fenced. The decision asks
 * only for actions whose capability the driver has (capabilitiesOf: its methods), so a missing
 * method here is a bug, reported as Unsupported rather than a TypeError.
 */
export async function runAction(
  action: Exclude<InstanceAction, { type: "Create" | "RemoveFinalizer" }>,
  driver: Driver<unknown>,
  ref: MachineRef,
  desired: DesiredMachine<unknown>,
  ctx: CallContext,
  fence: (ownerUID: string) => void,
): Promise<void> {
  if (action.type === "Resize") await driver.validate({ ...desired, plan: action.plan }, ctx);
  // Fencing: every call below changes a VM; a replica that may no longer hold the object's
  // (shard's) lease sends none.
  fence(desired.ownerUID);
  const lacks = (what: string): UnsupportedError =>
    new UnsupportedError(`${driver.provider} cannot ${what}`, { provider: driver.provider, operation: what });
  switch (action.type) {
    case "Start":
      if (!driver.start) throw lacks("start");
      return driver.start(ref, ctx);
    case "Stop":
      if (action.hard) {
        if (!driver.hardStop) throw lacks("hard stop");
        return driver.hardStop(ref, ctx);
      }
      if (!driver.stop) throw lacks("stop");
      return driver.stop(ref, ctx);
    case "Resize":
      if (!driver.resize) throw lacks("resize");
      return driver.resize(ref, action.plan, ctx);
    case "Rebuild":
      if (!driver.rebuild) throw lacks("rebuild");
      return driver.rebuild(ref, action.image, desired, ctx);
    case "SetTags":
      if (!driver.setTags) throw lacks("set tags");
      return driver.setTags(ref, action.tags, desired.ownerUID, ctx);
    case "Delete":
      return driver.delete(ref, ctx);
    case "Reboot":
      if (!driver.reboot) throw lacks("reboot");
      return driver.reboot(ref, ctx);
    case "Renew":
      if (!driver.renew) throw lacks("renew a lease");
      return driver.renew(ref, ctx);
  }
}

/**
 * The plan's price where the driver's documented catalogue gives one (from its cache: no
 * call per reconcile). Nothing is written where no price is documented.
 */
export async function withPrice(
  status: CloudInstanceStatus,
  driver: Driver<unknown>,
  desired: DesiredMachine<unknown>,
  ctx: CallContext,
): Promise<CloudInstanceStatus> {
  if (!driver.price || status.instanceID === undefined) return status;
  const plan = status.plan ?? desired.plan;
  const price = await driver.price({ ...desired, plan }, ctx).catch((err: unknown) => {
    // Put off by the account's budget: keep the price status has, retry with the object.
    if (findThrottled(err)) throw err;
    return undefined;
  });
  if (price === undefined) {
    const { price: _gone, ...rest } = status;
    return rest;
  }
  return { ...status, price: { ...price } };
}

/** The object's resync period: its poll-interval annotation, else the default. */
export function resyncFor(obj: CloudInstance, defaultMs: number): number {
  const text = obj.metadata.annotations?.[ANNOTATION_POLL_INTERVAL];
  if (text === undefined) return defaultMs;
  try {
    return Math.max(1000, parseDuration(text));
  } catch {
    return defaultMs;
  }
}

/** What the driver is asked for: the resolved spec, parsed options and the bookkeeping. */
export function desiredMachine(
  obj: CloudInstance,
  spec: ResolvedSpec,
  options: unknown,
  clusterID: string,
): DesiredMachine<unknown> {
  return {
    ownerUID: obj.metadata.uid ?? "",
    clusterID: clusterID,
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name ?? "",
    region: spec.region,
    plan: spec.plan,
    image: spec.image,
    sshKeys: spec.sshKeys,
    tags: spec.tags,
    powerState: spec.powerState,
    options,
    providerData: { ...spec.templateProviderData, ...obj.status?.providerData },
  };
}

/** The status with the reconcile-requested-at value echoed. */
export function withEcho(obj: CloudInstance, status: CloudInstanceStatus): CloudInstanceStatus {
  const requested = obj.metadata.annotations?.[ANNOTATION_RECONCILE_REQUESTED_AT];
  return requested === undefined ? status : { ...status, lastHandledReconcileAt: requested };
}

/** Carries out the pure observation plan: at most a read by id and a lookup by owner. */
export async function observeMachine(
  obj: CloudInstance,
  driver: Driver<unknown>,
  desired: DesiredMachine<unknown>,
  firstContact: boolean,
  deleting: boolean,
  ctx: CallContext,
  created: Map<string, { id: string; providerData: Record<string, string> | undefined }>,
): Promise<Observation> {
  const uid = desired.ownerUID;
  const recent = created.get(uid);
  if (recent !== undefined && obj.status?.instanceID === recent.id) created.delete(uid);
  const annotations = obj.metadata.annotations ?? {};
  const facts: ObservationFacts = {
    deleting,
    externalId: annotations[ANNOTATION_EXTERNAL_ID],
    statusId: obj.status?.instanceID,
    statusPhase: obj.status?.phase,
    recentId: created.get(uid)?.id,
    firstContact,
    canFindByOwner: driver.findByOwner !== undefined,
    createPending: annotations[ANNOTATION_CREATE_PENDING],
  };
  let plan = planObservation(facts);
  if (plan.read === "byId") {
    const providerData = plan.fromRecentCreate
      ? { ...desired.providerData, ...recent?.providerData }
      : desired.providerData;
    const machine = await driver.get({ id: plan.id, providerData, options: desired.options }, ctx);
    if (machine) return { kind: "found", machine };
    plan = plan.ownerLookupIfGone
      ? { read: "byOwner" }
      : { read: "nothing", observation: { kind: "absent" } };
  }
  if (plan.read === "nothing") return plan.observation;
  // The plan reads by owner only where canFindByOwner said the driver can.
  const [first, ...rest] = (await driver.findByOwner?.(uid, desired, ctx)) ?? [];
  if (!first) return { kind: "absent" };
  return rest.length > 0
    ? { kind: "found", machine: first, duplicates: rest }
    : { kind: "found", machine: first };
}
