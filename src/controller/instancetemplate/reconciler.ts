import type { ProviderDefinition } from "../../providers/definition.ts";
import type { Logger } from "pino";
import {
  FINALIZER,
  type CloudInstance,
  type CloudInstanceStatus,
  type InstanceTemplate,
  type InstanceTemplateStatus,
} from "../../api/index.ts";
import { isProviderError } from "../../providers/errors.ts";
import { capabilitiesOf, type CallContext, type Driver } from "../../providers/driver.ts";
import type { EventSink, ObjectWriter, ReadCache } from "../ports.ts";
import { openDriver, type ProviderAccessDeps } from "../provider-access.ts";
import { statusEqual } from "../status-equal.ts";
import { setCondition } from "../conditions.ts";
import { parseProviderOptions } from "../provider-options.ts";
import { decideTemplate, type TemplateAction } from "./decide.ts";
import { ownedInstance } from "./owned-instance.ts";

export interface TemplateReconcilerDeps {
  templates: ReadCache<InstanceTemplate>;
  /** Endpoint policy, labelled credentials and the driver pool. */
  access: ProviderAccessDeps;
  /** CloudInstances that name this template in spec.templateRef (owned ones included). */
  referencing(namespace: string, template: string): CloudInstance[];
  /**
   * The same read from the API server, for a template being deleted when the cache does not
   * hold every CloudInstance (--shard-watch=labels: instances of other shards that name the
   * template must still hold its deletion).
   */
  referencingLive?: (namespace: string, template: string, signal: AbortSignal) => Promise<CloudInstance[]>;
  templateWriter: ObjectWriter<InstanceTemplate, InstanceTemplateStatus>;
  instanceWriter: ObjectWriter<CloudInstance, CloudInstanceStatus>;
  events: EventSink;
  logger: Logger;
  resyncMs: number;
  /** --max-replicas: the most CloudInstances one template may own. */
  maxReplicas: number;
  /** Throws unless this replica may send provider mutations now (leader election fencing). */
  /** Fencing before every provider mutation: throws unless this replica holds the template's (shard's) lease. */
  fence: (ownerUID: string) => void;
  now?: () => number;
}

/**
 * Reconciles one InstanceTemplate: validates it against its driver, mirrors it remotely
 * where the provider has templates, owns `spec.replicas` CloudInstances, and holds its own
 * deletion while instances still reference it.
 */
export class TemplateReconciler {
  readonly #d: TemplateReconcilerDeps;
  readonly #now: () => number;

  constructor(deps: TemplateReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** `signal` aborts when the reconcile is cancelled; it goes to every kube and provider call. */
  async reconcile(
    namespace: string,
    name: string,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<{ requeueAfterMs?: number }> {
    const ctx: CallContext = { signal };
    let template = this.#d.templates.get(namespace, name);
    if (!template) return {};
    const deleting = template.metadata.deletionTimestamp !== undefined;
    const hasFinalizer = template.metadata.finalizers?.includes(FINALIZER) ?? false;
    if (deleting && !hasFinalizer) return {};
    if (!deleting && !hasFinalizer) {
      template = await this.#d.templateWriter.patchMetadata(
        template,
        {
          finalizers: [...(template.metadata.finalizers ?? []), FINALIZER],
        },
        ctx.signal,
      );
    }
    const live = deleting ? this.#d.referencingLive : undefined;
    const referencing = live ? await live(namespace, name, signal) : this.#d.referencing(namespace, name);
    const owned = referencing.filter((i) =>
      i.metadata.ownerReferences?.some((o) => o.uid === template.metadata.uid),
    );

    const provider = template.spec.provider;
    const checked =
      provider === undefined
        ? { invalid: undefined, driver: undefined, options: undefined }
        : await this.#check(template, provider);
    const { driver, options } = checked;
    const remote = driver !== undefined && capabilitiesOf(driver).has("remoteTemplates");
    let status: InstanceTemplateStatus = template.status ?? {};
    try {
      const recorded = template.status?.providerData ?? {};
      // Drift check of the remote twin at every pass (one GET): a vanished one is recreated.
      const remoteExists =
        remote &&
        template.metadata.deletionTimestamp === undefined &&
        Object.keys(recorded).length > 0 &&
        driver?.templateExists
          ? await driver.templateExists(recorded, ctx)
          : undefined;
      const decision = decideTemplate({
        template,
        owned,
        referencing,
        invalid: checked.invalid,
        remote,
        remoteExists,
        maxReplicas: this.#d.maxReplicas,
        now: this.#now(),
      });
      for (const e of decision.events) this.#d.events.record(template, e.type, e.reason, e.message);
      status = decision.status;
      for (const action of decision.actions)
        status = await this.#act(template, action, status, driver, options, ctx);
      if (decision.actions.some((a) => a.type === "RemoveFinalizer")) return {};
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const reason = isProviderError(err) ? err.reason : "ReconcileError";
      status = {
        ...status,
        conditions: setCondition(
          status.conditions,
          { type: "Synced", status: "False", reason, message },
          new Date(this.#now()).toISOString(),
          template.metadata.generation,
        ),
      };
      this.#d.events.record(template, "Warning", reason, message);
      await this.#writeStatus(template, status, ctx);
      if (isProviderError(err) && err.terminal) return { requeueAfterMs: this.#d.resyncMs };
      throw err;
    }
    await this.#writeStatus(template, status, ctx);
    return deleting ? { requeueAfterMs: 2000 } : {};
  }

  /**
   * Validates providerOptions with the driver's schema. Credentials matter only to drivers
   * that mirror templates remotely; for the others a missing Secret is reported on the
   * instances that need it, not on the template.
   */
  async #check(
    template: InstanceTemplate,
    provider: NonNullable<InstanceTemplate["spec"]["provider"]>,
  ): Promise<{ invalid: string | undefined; driver: Driver<unknown> | undefined; options: unknown }> {
    const factory: ProviderDefinition = this.#d.access.drivers.factory(provider.name);
    const parsed = parseProviderOptions(factory, template.spec.providerOptions);
    if (!parsed.ok) return { invalid: parsed.message, driver: undefined, options: undefined };
    try {
      const { driver } = await openDriver(this.#d.access, template.metadata.namespace ?? "", provider);
      return { invalid: undefined, driver, options: parsed.options };
    } catch (err) {
      const needsDriver = factory.mirrorsTemplates === true;
      return {
        invalid: needsDriver ? (err instanceof Error ? err.message : String(err)) : undefined,
        driver: undefined,
        options: parsed.options,
      };
    }
  }

  /** Carries out one of decideTemplate's actions; returns the status with what it changed. */
  async #act(
    template: InstanceTemplate,
    action: TemplateAction,
    status: InstanceTemplateStatus,
    driver: Driver<unknown> | undefined,
    options: unknown,
    ctx: CallContext,
  ): Promise<InstanceTemplateStatus> {
    switch (action.type) {
      case "CreateInstance":
        await this.#createInstance(template, action.name, ctx);
        return status;
      case "DeleteInstance":
        await this.#d.instanceWriter.delete(template.metadata.namespace ?? "", action.name, ctx.signal);
        return status;
      case "SyncRemoteTemplate":
        return this.#syncRemoteTemplate(template, status, driver, options, ctx);
      case "DeleteRemoteTemplate":
        if (driver?.deleteTemplate) {
          this.#d.fence(template.metadata.uid ?? "");
          await driver.deleteTemplate(status.providerData ?? {}, ctx);
        }
        return status;
      case "RemoveFinalizer":
        await this.#d.templateWriter.patchMetadata(
          template,
          {
            finalizers: (template.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
          },
          ctx.signal,
        );
        return status;
    }
  }

  async #createInstance(template: InstanceTemplate, name: string, ctx: CallContext): Promise<void> {
    try {
      await this.#d.instanceWriter.create(ownedInstance(template, name), ctx.signal);
    } catch (err) {
      // A re-run after a lagging cache: the name is taken by our own earlier create.
      if ((err as { code?: unknown }).code !== "ERR_KUBE_ALREADY_EXISTS") throw err;
    }
  }

  /** Creates or updates the provider's twin of the template; its ids go to status.providerData. */
  async #syncRemoteTemplate(
    template: InstanceTemplate,
    status: InstanceTemplateStatus,
    driver: Driver<unknown> | undefined,
    options: unknown,
    ctx: CallContext,
  ): Promise<InstanceTemplateStatus> {
    if (!driver?.syncTemplate) return status;
    const spec = template.spec;
    this.#d.fence(template.metadata.uid ?? "");
    const providerData = await driver.syncTemplate(
      {
        ownerUID: template.metadata.uid ?? "",
        namespace: template.metadata.namespace ?? "",
        name: template.metadata.name ?? "",
        region: spec.region,
        plan: spec.plan,
        image: spec.image,
        sshKeys: spec.sshKeys ?? [],
        tags: spec.tags ?? [],
        options,
        providerData: status.providerData ?? {},
      },
      ctx,
    );
    this.#d.events.record(
      template,
      "Normal",
      "RemoteTemplateSynced",
      `remote template ${Object.values(providerData).join(", ")} is up to date`,
    );
    return { ...status, providerData: { ...status.providerData, ...providerData } };
  }

  async #writeStatus(
    template: InstanceTemplate,
    status: InstanceTemplateStatus,
    ctx: CallContext,
  ): Promise<void> {
    if (statusEqual(template.status, status)) return;
    await this.#d.templateWriter.writeStatus(template, status, ctx.signal);
  }
}
