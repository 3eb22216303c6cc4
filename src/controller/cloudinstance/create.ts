import { ANNOTATION_CREATE_PENDING, type CloudInstance, type CloudInstanceStatus } from "../../api/index.ts";
import type { CallContext, CreateResult, DesiredMachine, Driver } from "../../providers/driver.ts";
import { findThrottled, ProviderError, TransientError } from "../../providers/errors.ts";
import type { InstanceReconcilerDeps } from "./reconciler.ts";

/** What a create needs from the reconciler: its ports, clock and expectations. */
export interface CreateDeps extends Pick<
  InstanceReconcilerDeps,
  "writer" | "connections" | "events" | "fence"
> {
  now: () => number;
  /** Expectations: VMs created here whose id the cache does not show yet, by owner UID. */
  created: Map<string, { id: string; providerData: Record<string, string> | undefined }>;
  writeStatus(obj: CloudInstance, status: CloudInstanceStatus): Promise<CloudInstance>;
  /** Status after the connection Secret (if any) says what status says about the VM. */
  connection(
    obj: CloudInstance,
    status: CloudInstanceStatus,
    desired: DesiredMachine<unknown>,
  ): Promise<CloudInstanceStatus>;
}

/**
 * Crash-safe create: validate first, mark the intent where the provider cannot find VMs by
 * owner, create once, and persist the id before anything else can fail.
 */
export async function createMachine(
  deps: CreateDeps,
  at: {
    obj: CloudInstance;
    status: CloudInstanceStatus;
    driver: Driver<unknown>;
    desired: DesiredMachine<unknown>;
  },
  ctx: CallContext,
): Promise<CloudInstance> {
  const { obj, status, driver } = at;
  let desired = at.desired;
  let current = obj;
  await driver.validate(desired, ctx);
  const ref = obj.spec.writeConnectionSecretToRef;
  if (obj.spec.sshKeyGeneration !== undefined && ref !== undefined) {
    // The key pair is stored before the VM exists: a crash must never lose its private half.
    const publicKey = await deps.connections.keyPairFor(obj, ref.name);
    desired = { ...desired, sshKeys: [...desired.sshKeys, publicKey] };
  }
  const marked = driver.findByOwner === undefined;
  if (marked) {
    current = await deps.writer.patchMetadata(
      current,
      {
        annotations: { [ANNOTATION_CREATE_PENDING]: new Date(deps.now()).toISOString() },
      },
      ctx.signal,
    );
  }
  let result: CreateResult;
  try {
    deps.fence(desired.ownerUID);
    result = await driver.create(desired, ctx);
  } catch (err) {
    // The provider answered "no" (bad spec, credentials, billing, rate limit): nothing was
    // created, so the marker would only block the retry. An ambiguous failure keeps it.
    // So did the account's budget when it refused a request: refusals stop at the first
    // mutating request, so a ThrottledError means the create was never sent.
    const refused = err instanceof ProviderError && (!(err instanceof TransientError) || findThrottled(err));
    if (marked && refused && !ctx.signal.aborted) {
      await deps.writer.patchMetadata(
        current,
        { annotations: { [ANNOTATION_CREATE_PENDING]: null } },
        ctx.signal,
      );
    }
    throw err;
  }
  deps.created.set(desired.ownerUID, { id: result.id, providerData: result.providerData });
  const next: CloudInstanceStatus = { ...status, instanceID: result.id };
  if (result.providerData) next.providerData = { ...status.providerData, ...result.providerData };
  if (result.observed) {
    next.phase = result.observed.phase;
    next.providerStatus = result.observed.providerStatus;
  }
  current = await deps.writeStatus(current, await deps.connection(current, next, desired));
  deps.events.record(current, "Normal", "Created", `created VM ${result.id} at ${driver.provider}`);
  if (marked)
    current = await deps.writer.patchMetadata(
      current,
      {
        annotations: { [ANNOTATION_CREATE_PENDING]: null },
      },
      ctx.signal,
    );
  return current;
}
