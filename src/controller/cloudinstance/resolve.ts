import {
  SPEC_DEFAULTS,
  type CloudInstance,
  type InstanceTemplate,
  type MachineFields,
  type ManagementPolicy,
  type PowerState,
  type ProviderRef,
} from "../../api/index.ts";

/** The spec a CloudInstance asks for once its template is merged in. */
export interface ResolvedSpec {
  provider: ProviderRef;
  region: string | undefined;
  plan: string | undefined;
  image: string | undefined;
  sshKeys: string[];
  tags: string[];
  providerOptions: Record<string, unknown>;
  powerState: PowerState;
  deletionPolicy: "Delete" | "Orphan";
  updatePolicy: "Safe" | "AllowRebuild";
  managementPolicies: readonly ManagementPolicy[];
  driftPolicy: "Correct" | "Report";
  /** Provider bookkeeping inherited from the template (e.g. the multicloud remote template id). */
  templateProviderData: Record<string, string>;
}

export type ResolveResult =
  | { ok: true; spec: ResolvedSpec }
  | { ok: false; reason: "TemplateNotFound" | "InvalidSpec" | "TemplateNotReady"; message: string };

/**
 * Merges `templateRef` (same namespace) with the instance's own fields: a field set on the
 * instance wins; providerOptions merge key by key; lists replace whole (a user who sets tags
 * on the instance means exactly those tags).
 */
export function resolveSpec(instance: CloudInstance, template: InstanceTemplate | undefined): ResolveResult {
  const spec = instance.spec;
  // Objects written under an older CRD (the operator upgraded first) lack newer defaulted fields.
  const older: Partial<typeof spec> = spec;
  const ref = spec.templateRef?.name;
  if (ref !== undefined && template === undefined) {
    return {
      ok: false,
      reason: "TemplateNotFound",
      message: `InstanceTemplate "${instance.metadata.namespace ?? ""}/${ref}" not found`,
    };
  }
  const base: MachineFields = template?.spec ?? {};
  const provider = spec.provider ?? base.provider;
  if (provider === undefined) {
    return {
      ok: false,
      reason: "InvalidSpec",
      message: "spec.provider is required (set it on the CloudInstance or on its InstanceTemplate)",
    };
  }
  if (template && spec.provider && base.provider && spec.provider.name !== base.provider.name) {
    return {
      ok: false,
      reason: "InvalidSpec",
      message: `spec.provider.name "${spec.provider.name}" differs from template "${template.metadata.name ?? ""}" provider "${base.provider.name}"`,
    };
  }
  return {
    ok: true,
    spec: {
      provider,
      region: spec.region ?? base.region,
      plan: spec.plan ?? base.plan,
      image: spec.image ?? base.image,
      sshKeys: [...(spec.sshKeys ?? base.sshKeys ?? [])],
      tags: [...(spec.tags ?? base.tags ?? [])],
      providerOptions: { ...base.providerOptions, ...spec.providerOptions },
      powerState: spec.powerState,
      deletionPolicy: spec.deletionPolicy,
      updatePolicy: spec.updatePolicy,
      managementPolicies: older.managementPolicies ?? SPEC_DEFAULTS.managementPolicies,
      driftPolicy: older.driftPolicy ?? SPEC_DEFAULTS.driftPolicy,
      templateProviderData: { ...template?.status?.providerData },
    },
  };
}
