import type { ProviderDefinition } from "../../providers/definition.ts";
import type { Logger } from "pino";
import {
  ANNOTATION_EXTERNAL_ID,
  ANNOTATION_FORCE_ADOPT,
  ANNOTATION_PAUSED,
  ANNOTATION_RECONCILE_REQUESTED_AT,
  ANNOTATION_RESTART_REQUESTED_AT,
  FINALIZER,
  type CloudInstance,
  type CloudInstanceStatus,
  type InstanceTemplate,
} from "../../api/index.ts";
import type { CallContext, DesiredMachine, Driver, MachineRef } from "../../providers/driver.ts";
import { capabilitiesOf } from "../../providers/driver.ts";
import type { EventSink, ObjectWriter, ReadCache } from "../ports.ts";
import { openDriver, type ProviderAccessDeps } from "../provider-access.ts";
import type { ConnectionSecrets } from "./connection-secret.ts";
import { decide, errorStatus, type Decision, type Observation } from "./decide.ts";
import type { InstanceTiming } from "./decision.ts";
import { resolveSpec, type ResolvedSpec } from "./resolve.ts";
import { specRefusal, templateRefusal } from "./preconditions.ts";
import { statusEqual } from "../status-equal.ts";
import { findThrottled } from "../../providers/errors.ts";
import type { Ticket } from "../../providers/admission.ts";
import type { ReconcileResult } from "../runtime/controller.ts";
import {
  desiredMachine,
  fromError,
  observeMachine,
  ReconcileFailure,
  resyncFor,
  runAction,
  withEcho,
  withPrice,
} from "./reconcile-parts.ts";
import { createMachine } from "./create.ts";
import { parseProviderOptions } from "../provider-options.ts";

/** The signal of a reconcile nobody cancels (tests and direct calls). */
const NEVER = new AbortController().signal;

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
  /**
   * A reconcile was put off because its account had no budget or no free share of the
   * workers (fairness between accounts): the throttled metric.
   */
  onThrottled?: (provider: string, reason: "budget" | "inflight") => void;
  /**
   * Requeues `namespace/name` at once (replacing its pending requeue): how an account's gate
   * wakes an object put off for a slot as soon as one frees.
   */
  wake?: (key: string) => void;
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
    const resyncMs = resyncFor(obj, this.#d.timing.resyncMs);

    if (annotations[ANNOTATION_PAUSED] === "true") {
      await this.#pause(obj, ctx);
      return {};
    }

    let current = obj;
    let ticket: Ticket | undefined;
    try {
      const { spec, driver, options } = await this.#prepare(obj, deleting);
      // Fairness between accounts: no provider call unless the account has budget and a free
      // share of the workers; otherwise requeue for when it will, and free this worker now.
      const wake = this.#d.wake;
      const admission = this.#d.access.drivers
        .gate(driver)
        .tryAdmit(wake === undefined ? undefined : { key: `${namespace}/${name}`, wake });
      if (!admission.admitted) {
        this.#d.onThrottled?.(driver.provider, admission.reason);
        return { requeueAfterMs: admission.retryAfterMs };
      }
      const admitted = admission.ticket;
      ticket = admitted;
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
      const desired = desiredMachine(current, spec, options, this.#d.clusterID);
      // Nothing creates a VM before the finalizer is stored, so an object that had none when
      // this pass began cannot own a VM yet: no lookup by owner (a full list at some providers).
      const firstContact = !hasFinalizer && !deleting;
      const observed = current;
      const observation = await admitted.run(() =>
        observeMachine(observed, driver, desired, firstContact, deleting, ctx, this.#created),
      );
      const decision = this.#decide(current, spec, observation, driver, deleting, resyncMs);
      for (const e of decision.events) this.#d.events.record(current, e.type, e.reason, e.message);
      const acting = current;
      await admitted.run(() => this.#act(acting, decision, driver, desired, ctx));
      return decision.requeueAfterMs === undefined ? {} : { requeueAfterMs: decision.requeueAfterMs };
    } catch (err) {
      // A request the account's budget refused (nothing sent): not an error, no backoff, no
      // status — the object comes back when the account is expected to have budget again.
      const throttled = findThrottled(err);
      if (throttled !== undefined && ticket !== undefined && !signal.aborted) {
        this.#d.onThrottled?.(throttled.provider ?? "unknown", "budget");
        return { requeueAfterMs: ticket.refused(throttled.retryAfterMs) };
      }
      return await this.#fail(namespace, name, current, err, resyncMs, ctx);
    } finally {
      ticket?.release();
    }
  }

  /** The paused annotation: say so in status, call nothing. */
  async #pause(obj: CloudInstance, ctx: CallContext): Promise<void> {
    await this.#putStatus(
      obj,
      withEcho(
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
  }

  /** The resolved spec, the account's driver and the parsed options; refusals are terminal failures. */
  async #prepare(
    obj: CloudInstance,
    deleting: boolean,
  ): Promise<{ spec: ResolvedSpec; driver: Driver<unknown>; options: unknown }> {
    const spec = this.#resolve(obj);
    const invalid = specRefusal(obj.spec);
    if (invalid) throw new ReconcileFailure({ ...invalid, terminal: true });
    const { driver, factory } = await openDriver(this.#d.access, obj.metadata.namespace ?? "", spec.provider);
    const options = this.#parseOptions(factory, spec);
    const waiting = templateRefusal({
      spec,
      templateName: obj.spec.templateRef?.name,
      mirrorsTemplates: factory.mirrorsTemplates === true,
      provider: factory.provider,
      deleting,
    });
    if (waiting) throw new ReconcileFailure({ ...waiting, terminal: true });
    return { spec, driver, options };
  }

  #decide(
    current: CloudInstance,
    spec: ResolvedSpec,
    observation: Observation,
    driver: Driver<unknown>,
    deleting: boolean,
    resyncMs: number,
  ): Decision {
    const annotations = current.metadata.annotations ?? {};
    const stoppingForMs = this.#stoppingFor(current.metadata.uid ?? "", observation);
    return decide({
      generation: current.metadata.generation,
      deleting,
      status: current.status ?? {},
      spec,
      observation,
      capabilities: capabilitiesOf(driver),
      adopted: annotations[ANNOTATION_EXTERNAL_ID] !== undefined,
      uid: current.metadata.uid ?? "",
      forceAdopt: annotations[ANNOTATION_FORCE_ADOPT] === "true",
      now: this.#now(),
      timing: { ...this.#d.timing, resyncMs },
      reconcileRequestedAt: annotations[ANNOTATION_RECONCILE_REQUESTED_AT],
      restartRequestedAt: annotations[ANNOTATION_RESTART_REQUESTED_AT],
      jitter: this.#random(),
      stoppingForMs,
    });
  }

  /** A failed pass: status and an Event (once), then a resync for terminal failures or a retry. */
  async #fail(
    namespace: string,
    name: string,
    current: CloudInstance,
    err: unknown,
    resyncMs: number,
    ctx: CallContext,
  ): Promise<ReconcileResult> {
    const failure = fromError(err);
    const fresh = this.#d.instances.get(namespace, name) ?? current;
    const latest = fresh.metadata.resourceVersion === current.metadata.resourceVersion ? current : fresh;
    const status = withEcho(
      latest,
      errorStatus(latest.status ?? {}, failure, this.#now(), latest.metadata.generation),
    );
    const changed = !statusEqual(latest.status, status);
    if (changed) {
      this.#d.events.record(latest, "Warning", failure.reason, failure.message);
      await this.#putStatus(latest, status, ctx);
    }
    if (failure.terminal) return { requeueAfterMs: resyncMs };
    throw failure.cause instanceof Error ? failure.cause : new Error(failure.message);
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

  #resolve(obj: CloudInstance): ResolvedSpec {
    const ref = obj.spec.templateRef?.name;
    const template = ref === undefined ? undefined : this.#d.templates.get(obj.metadata.namespace ?? "", ref);
    const resolved = resolveSpec(obj, template);
    if (!resolved.ok)
      throw new ReconcileFailure({ reason: resolved.reason, message: resolved.message, terminal: true });
    return resolved.spec;
  }

  #parseOptions(factory: ProviderDefinition, spec: ResolvedSpec): unknown {
    const parsed = parseProviderOptions(factory, spec.providerOptions);
    if (!parsed.ok)
      throw new ReconcileFailure({
        reason: "InvalidProviderOptions",
        message: parsed.message,
        terminal: true,
      });
    return parsed.options;
  }

  #ref(id: string, desired: DesiredMachine<unknown>): MachineRef {
    return { id, providerData: desired.providerData, options: desired.options };
  }

  async #act(
    obj: CloudInstance,
    decision: Decision,
    driver: Driver<unknown>,
    desired: DesiredMachine<unknown>,
    ctx: CallContext,
  ): Promise<void> {
    const current = obj;
    let status = withEcho(current, decision.status);
    const action = decision.action;
    if (action !== undefined) {
      const id = status.instanceID ?? current.status?.instanceID ?? "";
      const ref = this.#ref(id, desired);
      switch (action.type) {
        case "Create":
          await createMachine(
            {
              ...this.#d,
              now: this.#now,
              created: this.#created,
              writeStatus: (o, st) => this.#writeStatus(o, st, ctx),
              connection: (o, st, d) => this.#connection(o, st, d),
            },
            { obj: current, status, driver, desired },
            ctx,
          );
          return;
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
          return;
        default:
          await runAction(action, driver, ref, desired, ctx, this.#d.fence);
          // Echoed only once the provider accepted it: each new value restarts the VM once.
          if (action.type === "Reboot")
            status = {
              ...status,
              lastHandledRestartAt: current.metadata.annotations?.[ANNOTATION_RESTART_REQUESTED_AT] ?? "",
            };
      }
    }
    const priced = await withPrice(status, driver, desired, ctx);
    await this.#putStatus(current, await this.#connection(current, priced, desired), ctx);
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

  async #writeStatus(
    obj: CloudInstance,
    status: CloudInstanceStatus,
    ctx: CallContext,
  ): Promise<CloudInstance> {
    if (statusEqual(obj.status, status)) return obj;
    return this.#d.writer.replaceStatus(obj, status, ctx.signal);
  }

  /** #writeStatus where nothing reads the updated object: the server's answer is not parsed. */
  async #putStatus(obj: CloudInstance, status: CloudInstanceStatus, ctx: CallContext): Promise<void> {
    if (!statusEqual(obj.status, status)) await this.#d.writer.writeStatus(obj, status, ctx.signal);
  }
}
