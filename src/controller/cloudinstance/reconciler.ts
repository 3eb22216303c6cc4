import type { Logger } from "pino";
import {
  ANNOTATION_CREATE_PENDING,
  ANNOTATION_EXTERNAL_ID,
  ANNOTATION_FORCE_ADOPT,
  ANNOTATION_PAUSED,
  ANNOTATION_POLL_INTERVAL,
  ANNOTATION_RECONCILE_REQUESTED_AT,
  ANNOTATION_RESTART_REQUESTED_AT,
  FINALIZER,
  type CloudInstance,
  type CloudInstanceStatus,
  type InstanceTemplate,
} from "../../api/index.ts";
import type {
  CallContext,
  CreateResult,
  DesiredMachine,
  Driver,
  DriverFactory,
  MachineRef,
} from "../../providers/driver.ts";
import { isProviderError, ProviderError, TransientError, UnsupportedError } from "../../providers/errors.ts";
import { parseDuration } from "../../util/duration.ts";
import type { EventSink, ObjectWriter, ReadCache } from "../ports.ts";
import { AccessRefusedError, openDriver, type ProviderAccessDeps } from "../provider-access.ts";
import { ConnectionSecretConflictError, type ConnectionSecrets } from "./connection-secret.ts";
import { decide, errorStatus, type Decision, type InstanceAction, type Observation } from "./decide.ts";
import { resolveSpec, type ResolvedSpec } from "./resolve.ts";
import { planObservation, type ObservationFacts } from "./observe-plan.ts";
import { statusEqual } from "../status-equal.ts";
import { parseProviderOptions } from "../provider-options.ts";

/** The signal of a reconcile nobody cancels (tests and direct calls). */
const NEVER = new AbortController().signal;

export interface InstanceTiming {
  pollInitialMs: number;
  pollMaxMs: number;
  resyncMs: number;
  hardStopAfterMs: number;
  /** Sends of one mutating call on an unchanged VM before the no-progress guard stops it. */
  noProgressLimit: number;
  /** How long an unknown provider status is waited on before it is reported. */
  unknownStatusAfterMs: number;
}

export const DEFAULT_INSTANCE_TIMING: InstanceTiming = {
  pollInitialMs: 1000,
  pollMaxMs: 30_000,
  resyncMs: 5 * 60_000,
  hardStopAfterMs: 2 * 60_000,
  noProgressLimit: 3,
  unknownStatusAfterMs: 10 * 60_000,
};

export interface InstanceReconcilerDeps {
  instances: ReadCache<CloudInstance>;
  templates: ReadCache<InstanceTemplate>;
  /** Endpoint policy, labelled credentials and the driver pool. */
  access: ProviderAccessDeps;
  writer: ObjectWriter<CloudInstance, CloudInstanceStatus>;
  /** Throws unless this replica may send provider mutations now (leader election fencing). */
  /** Fencing before every provider mutation: throws unless this replica holds the object's (shard's) lease. */
  fence: (ownerUID: string) => void;
  /** This cluster's short identity, put in ownership marks ("" when unknown). */
  clusterID: string;
  /** Where spec.writeConnectionSecretToRef is written. */
  connections: ConnectionSecrets;
  events: EventSink;
  logger: Logger;
  timing: InstanceTiming;
  now?: () => number;
  /** Monotonic ms for durations this process measures itself (tests inject one). */
  monotonic?: () => number;
  random?: () => number;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

interface Failure {
  reason: string;
  message: string;
  terminal: boolean;
  cause?: unknown;
}

class ReconcileFailure extends Error {
  override readonly name = "ReconcileFailure";
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(failure.message);
    this.failure = failure;
  }
}

function fromError(err: unknown): Failure {
  if (err instanceof ReconcileFailure) return err.failure;
  if (err instanceof AccessRefusedError || err instanceof ConnectionSecretConflictError)
    return { reason: err.reason, message: err.message, terminal: true };
  if (isProviderError(err))
    return { reason: err.reason, message: err.message, terminal: err.terminal, cause: err };
  const message = err instanceof Error ? err.message : String(err);
  return { reason: "ReconcileError", message, terminal: false, cause: err };
}

/**
 * Reconciles one CloudInstance: resolve the desired spec, observe the provider, decide
 * (pure), act, and write status only when it changed. Every failure ends up on the status
 * and in an Event; terminal ones (user must fix) are not retried until the object changes.
 */
export class InstanceReconciler {
  readonly #d: InstanceReconcilerDeps;
  readonly #now: () => number;
  readonly #random: () => number;
  /**
   * VMs this process created, by owner UID, until the cache shows their id: a reconcile that
   * runs on a cache older than our own status write must not create a second VM
   * (controller-runtime calls this "expectations").
   */
  readonly #created = new Map<string, { id: string; providerData: Record<string, string> | undefined }>();
  /** When this process first saw each VM in a graceful stop (monotonic ms), by owner UID. */
  readonly #stoppingSince = new Map<string, number>();
  readonly #monotonic: () => number;

  constructor(deps: InstanceReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#monotonic = deps.monotonic ?? (() => performance.now());
  }

  /**
   * `signal` aborts when the reconcile is cancelled (leadership lost, shutdown grace over): it
   * goes to every kube and provider call of this pass.
   */
  async reconcile(namespace: string, name: string, signal: AbortSignal = NEVER): Promise<ReconcileResult> {
    const ctx: CallContext = { signal };
    const obj = this.#d.instances.get(namespace, name);
    if (!obj) return {};
    const deleting = obj.metadata.deletionTimestamp !== undefined;
    const hasFinalizer = obj.metadata.finalizers?.includes(FINALIZER) ?? false;
    if (deleting && !hasFinalizer) return {};
    const annotations = obj.metadata.annotations ?? {};
    const resyncMs = this.#resyncFor(obj);

    if (annotations[ANNOTATION_PAUSED] === "true") {
      await this.#writeStatus(
        obj,
        this.#withEcho(
          obj,
          errorStatus(
            obj.status ?? {},
            { reason: "Paused", message: `the ${ANNOTATION_PAUSED} annotation stops all provider calls` },
            this.#now(),
            obj.metadata.generation,
            obj.status?.phase ?? "Pending",
          ),
        ),
        ctx,
      );
      return {};
    }

    let current = obj;
    try {
      const spec = this.#resolve(obj);
      if (obj.spec.sshKeyGeneration !== undefined && obj.spec.writeConnectionSecretToRef === undefined)
        throw new ReconcileFailure({
          reason: "InvalidSpec",
          message:
            "sshKeyGeneration needs writeConnectionSecretToRef: the private key must have a Secret to live in",
          terminal: true,
        });
      const { driver, factory } = await openDriver(
        this.#d.access,
        obj.metadata.namespace ?? "",
        spec.provider,
      );
      const options = this.#parseOptions(factory, spec);
      if (
        factory.mirrorsTemplates === true &&
        obj.spec.templateRef !== undefined &&
        !deleting &&
        Object.keys(spec.templateProviderData).length === 0
      ) {
        // The template's remote twin does not exist yet; the template's status change
        // re-queues this object (watch-mapped), so waiting costs no polling.
        throw new ReconcileFailure({
          reason: "TemplateNotReady",
          message: `InstanceTemplate "${obj.spec.templateRef.name}" has no remote template at ${factory.provider} yet`,
          terminal: true,
        });
      }
      if (!deleting && !hasFinalizer) {
        // Before the first provider call: a VM must never exist without a finalizer guarding it.
        current = await this.#d.writer.patchMetadata(
          current,
          {
            finalizers: [...(current.metadata.finalizers ?? []), FINALIZER],
          },
          ctx.signal,
        );
      }
      const desired = this.#desired(current, spec, options);
      // Nothing creates a VM before the finalizer is stored, so an object that had none when
      // this pass began cannot own a VM yet: no lookup by owner (a full list at some providers).
      const firstContact = !hasFinalizer && !deleting;
      const adopted = annotations[ANNOTATION_EXTERNAL_ID] !== undefined;
      const observation = await this.#observe(current, driver, desired, firstContact, deleting, ctx);
      const stoppingForMs = this.#stoppingFor(current.metadata.uid ?? "", observation);
      const decision = decide({
        generation: current.metadata.generation,
        deleting,
        status: current.status ?? {},
        spec,
        observation,
        capabilities: driver.capabilities,
        adopted,
        uid: current.metadata.uid ?? "",
        forceAdopt: annotations[ANNOTATION_FORCE_ADOPT] === "true",
        now: this.#now(),
        timing: { ...this.#d.timing, resyncMs },
        reconcileRequestedAt: annotations[ANNOTATION_RECONCILE_REQUESTED_AT],
        restartRequestedAt: annotations[ANNOTATION_RESTART_REQUESTED_AT],
        jitter: this.#random(),
        stoppingForMs,
      });
      for (const e of decision.events) this.#d.events.record(current, e.type, e.reason, e.message);
      current = await this.#act(current, decision, driver, desired, ctx);
      return decision.requeueAfterMs === undefined ? {} : { requeueAfterMs: decision.requeueAfterMs };
    } catch (err) {
      const failure = fromError(err);
      const fresh = this.#d.instances.get(namespace, name) ?? current;
      const latest = fresh.metadata.resourceVersion === current.metadata.resourceVersion ? current : fresh;
      const status = this.#withEcho(
        latest,
        errorStatus(latest.status ?? {}, failure, this.#now(), latest.metadata.generation),
      );
      const changed = !statusEqual(latest.status, status);
      if (changed) {
        this.#d.events.record(latest, "Warning", failure.reason, failure.message);
        await this.#writeStatus(latest, status, ctx);
      }
      if (failure.terminal) return { requeueAfterMs: resyncMs };
      throw failure.cause instanceof Error ? failure.cause : new Error(failure.message);
    }
  }

  /**
   * Time this process has seen the VM in a graceful stop, by its monotonic clock. Restarts at 0
   * in a new leader: a hard stop may come later than asked, never earlier.
   */
  #stoppingFor(uid: string, observation: Observation): number | undefined {
    const stopping = observation.kind === "found" && observation.machine.phase === "Stopping";
    if (!stopping) {
      this.#stoppingSince.delete(uid);
      return undefined;
    }
    const now = this.#monotonic();
    const since = this.#stoppingSince.get(uid) ?? now;
    this.#stoppingSince.set(uid, since);
    return now - since;
  }

  #resyncFor(obj: CloudInstance): number {
    const text = obj.metadata.annotations?.[ANNOTATION_POLL_INTERVAL];
    if (text === undefined) return this.#d.timing.resyncMs;
    try {
      return Math.max(1000, parseDuration(text));
    } catch {
      return this.#d.timing.resyncMs;
    }
  }

  #resolve(obj: CloudInstance): ResolvedSpec {
    const ref = obj.spec.templateRef?.name;
    const template = ref === undefined ? undefined : this.#d.templates.get(obj.metadata.namespace ?? "", ref);
    const resolved = resolveSpec(obj, template);
    if (!resolved.ok)
      throw new ReconcileFailure({ reason: resolved.reason, message: resolved.message, terminal: true });
    return resolved.spec;
  }

  #parseOptions(factory: DriverFactory<unknown>, spec: ResolvedSpec): unknown {
    const parsed = parseProviderOptions(factory, spec.providerOptions);
    if (!parsed.ok)
      throw new ReconcileFailure({
        reason: "InvalidProviderOptions",
        message: parsed.message,
        terminal: true,
      });
    return parsed.options;
  }

  #desired(obj: CloudInstance, spec: ResolvedSpec, options: unknown): DesiredMachine<unknown> {
    return {
      ownerUID: obj.metadata.uid ?? "",
      clusterID: this.#d.clusterID,
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

  #ref(id: string, desired: DesiredMachine<unknown>): MachineRef {
    return { id, providerData: desired.providerData, options: desired.options };
  }

  /** Carries out the pure observation plan: at most a read by id and a lookup by owner. */
  async #observe(
    obj: CloudInstance,
    driver: Driver<unknown>,
    desired: DesiredMachine<unknown>,
    firstContact: boolean,
    deleting: boolean,
    ctx: CallContext,
  ): Promise<Observation> {
    const uid = desired.ownerUID;
    const recent = this.#created.get(uid);
    if (recent !== undefined && obj.status?.instanceID === recent.id) this.#created.delete(uid);
    const annotations = obj.metadata.annotations ?? {};
    const facts: ObservationFacts = {
      deleting,
      externalId: annotations[ANNOTATION_EXTERNAL_ID],
      statusId: obj.status?.instanceID,
      statusPhase: obj.status?.phase,
      recentId: this.#created.get(uid)?.id,
      firstContact,
      canFindByOwner: driver.capabilities.has("findByOwner"),
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
    const [first, ...rest] = await driver.findByOwner(uid, desired, ctx);
    if (!first) return { kind: "absent" };
    return rest.length > 0
      ? { kind: "found", machine: first, duplicates: rest }
      : { kind: "found", machine: first };
  }

  async #act(
    obj: CloudInstance,
    decision: Decision,
    driver: Driver<unknown>,
    desired: DesiredMachine<unknown>,
    ctx: CallContext,
  ): Promise<CloudInstance> {
    const current = obj;
    let status = this.#withEcho(current, decision.status);
    for (const action of decision.actions) {
      const id = status.instanceID ?? current.status?.instanceID ?? "";
      const ref = this.#ref(id, desired);
      switch (action.type) {
        case "Create":
          return await this.#create(current, status, driver, desired, ctx);
        case "RemoveFinalizer":
          if (current.spec.writeConnectionSecretToRef)
            await this.#d.connections.remove(current, current.spec.writeConnectionSecretToRef.name);
          await this.#d.writer.patchMetadata(
            current,
            {
              finalizers: (current.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
            },
            ctx.signal,
          );
          // The object may be gone now; nothing more to write.
          return current;
        default:
          await this.#run(action, driver, ref, desired, ctx);
          // Echoed only once the provider accepted it: each new value restarts the VM once.
          if (action.type === "Reboot")
            status = {
              ...status,
              lastHandledRestartAt: current.metadata.annotations?.[ANNOTATION_RESTART_REQUESTED_AT] ?? "",
            };
      }
    }
    const priced = await this.#price(status, driver, desired, ctx);
    return this.#writeStatus(current, await this.#connection(current, priced, desired), ctx);
  }

  /**
   * The plan's price where the driver's documented catalogue gives one (from its cache: no
   * call per reconcile). Nothing is written where no price is documented.
   */
  async #price(
    status: CloudInstanceStatus,
    driver: Driver<unknown>,
    desired: DesiredMachine<unknown>,
    ctx: CallContext,
  ): Promise<CloudInstanceStatus> {
    if (!driver.price || status.instanceID === undefined) return status;
    const plan = status.plan ?? desired.plan;
    const price = await driver.price({ ...desired, plan }, ctx).catch(() => undefined);
    if (price === undefined) {
      const { price: _gone, ...rest } = status;
      return rest;
    }
    return { ...status, price: { ...price } };
  }

  /** Status after the connection Secret (if any) says what status says about the VM. */
  async #connection(
    obj: CloudInstance,
    status: CloudInstanceStatus,
    desired: DesiredMachine<unknown>,
  ): Promise<CloudInstanceStatus> {
    const ref = obj.spec.writeConnectionSecretToRef;
    if (ref === undefined) return status;
    return this.#d.connections.sync(obj, ref.name, status, desired.image);
  }

  async #run(
    action: Exclude<InstanceAction, { type: "Create" | "RemoveFinalizer" }>,
    driver: Driver<unknown>,
    ref: MachineRef,
    desired: DesiredMachine<unknown>,
    ctx: CallContext,
  ): Promise<void> {
    if (action.type === "Resize") await driver.validate({ ...desired, plan: action.plan }, ctx);
    // Fencing: every call below changes a VM; a replica that may no longer lead sends none.
    this.#d.fence(desired.ownerUID);
    switch (action.type) {
      case "Start":
        return driver.start(ref, ctx);
      case "Stop":
        return driver.stop(ref, { hard: action.hard }, ctx);
      case "Resize":
        return driver.resize(ref, action.plan, ctx);
      case "Rebuild":
        return driver.rebuild(ref, action.image, desired, ctx);
      case "SetTags":
        return driver.setTags(ref, action.tags, desired.ownerUID, ctx);
      case "Delete":
        return driver.delete(ref, ctx);
      case "Reboot":
        return driver.reboot(ref, ctx);
      case "Renew":
        if (!driver.renew) throw new UnsupportedError(`${driver.provider} cannot renew a lease`);
        return driver.renew(ref, ctx);
    }
  }

  /**
   * Crash-safe create: validate first, mark the intent where the provider cannot find VMs by
   * owner, create once, and persist the id before anything else can fail.
   */
  async #create(
    obj: CloudInstance,
    status: CloudInstanceStatus,
    driver: Driver<unknown>,
    desired: DesiredMachine<unknown>,
    ctx: CallContext,
  ): Promise<CloudInstance> {
    let current = obj;
    await driver.validate(desired, ctx);
    const ref = obj.spec.writeConnectionSecretToRef;
    if (obj.spec.sshKeyGeneration !== undefined && ref !== undefined) {
      // The key pair is stored before the VM exists: a crash must never lose its private half.
      const publicKey = await this.#d.connections.keyPairFor(obj, ref.name);
      desired = { ...desired, sshKeys: [...desired.sshKeys, publicKey] };
    }
    const marked = !driver.capabilities.has("findByOwner");
    if (marked) {
      current = await this.#d.writer.patchMetadata(
        current,
        {
          annotations: { [ANNOTATION_CREATE_PENDING]: new Date(this.#now()).toISOString() },
        },
        ctx.signal,
      );
    }
    let result: CreateResult;
    try {
      this.#d.fence(desired.ownerUID);
      result = await driver.create(desired, ctx);
    } catch (err) {
      // The provider answered "no" (bad spec, credentials, billing, rate limit): nothing was
      // created, so the marker would only block the retry. An ambiguous failure keeps it.
      if (marked && err instanceof ProviderError && !(err instanceof TransientError) && !ctx.signal.aborted) {
        await this.#d.writer.patchMetadata(
          current,
          { annotations: { [ANNOTATION_CREATE_PENDING]: null } },
          ctx.signal,
        );
      }
      throw err;
    }
    this.#created.set(desired.ownerUID, { id: result.id, providerData: result.providerData });
    const next: CloudInstanceStatus = { ...status, instanceID: result.id };
    if (result.providerData) next.providerData = { ...status.providerData, ...result.providerData };
    if (result.observed) {
      next.phase = result.observed.phase;
      next.providerStatus = result.observed.providerStatus;
    }
    current = await this.#writeStatus(current, await this.#connection(current, next, desired), ctx);
    this.#d.events.record(current, "Normal", "Created", `created VM ${result.id} at ${driver.provider}`);
    if (marked)
      current = await this.#d.writer.patchMetadata(
        current,
        {
          annotations: { [ANNOTATION_CREATE_PENDING]: null },
        },
        ctx.signal,
      );
    return current;
  }

  #withEcho(obj: CloudInstance, status: CloudInstanceStatus): CloudInstanceStatus {
    const requested = obj.metadata.annotations?.[ANNOTATION_RECONCILE_REQUESTED_AT];
    return requested === undefined ? status : { ...status, lastHandledReconcileAt: requested };
  }

  async #writeStatus(
    obj: CloudInstance,
    status: CloudInstanceStatus,
    ctx: CallContext,
  ): Promise<CloudInstance> {
    if (statusEqual(obj.status, status)) return obj;
    return this.#d.writer.replaceStatus(obj, status, ctx.signal);
  }
}
