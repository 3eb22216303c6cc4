import { z } from "zod";
import { LocalObjectReferenceSchema } from "./meta.ts";
import { providerFieldDescriptions } from "../providers/describe.ts";
import { PROVIDERS } from "../providers/registry.ts";
import { PROVIDER_NAMES } from "./provider-names.ts";

/** Descriptions of the fields whose meaning depends on the provider, from the definitions. */
const BY_PROVIDER = providerFieldDescriptions(PROVIDERS);

/**
 * Bounds on what one object may ask for. etcd refuses objects over 1.5 MiB and every field is
 * copied into status, Events and provider calls: without them 10,000 tags made a 1.2 MB object.
 */
export const LIMITS = {
  /** region, plan and image names. */
  nameLength: 253,
  endpointLength: 2048,
  tags: 50,
  tagLength: 128,
  sshKeys: 20,
  /** An RSA 16384 public key is about 2.8 KB; anything longer is not a key. */
  sshKeyLength: 16_384,
  providerOptions: 32,
  /** InstanceTemplate replicas, whatever --max-replicas allows. */
  replicas: 1000,
} as const;

/** Where and how to reach a provider; shared by CloudInstance and InstanceTemplate. */
export const ProviderRefSchema = z
  .object({
    name: z.enum(PROVIDER_NAMES).describe(BY_PROVIDER.name),
    credentialsSecretRef: LocalObjectReferenceSchema.optional().describe(BY_PROVIDER.credentialsSecretRef),
    endpoint: z
      .url()
      .max(LIMITS.endpointLength)
      .optional()
      .describe("Base URL of the provider API; each driver has its documented default."),
  })
  .describe("The provider that hosts the VM and how to authenticate to it.");
export type ProviderRef = z.infer<typeof ProviderRefSchema>;

/**
 * The reusable part of a VM description: what an InstanceTemplate holds and a CloudInstance
 * may override field by field.
 */
export const MachineFieldsSchema = z.object({
  provider: ProviderRefSchema.optional(),
  region: z.string().min(1).max(LIMITS.nameLength).optional().describe(BY_PROVIDER.region),
  plan: z.string().min(1).max(LIMITS.nameLength).optional().describe(BY_PROVIDER.plan),
  image: z.string().min(1).max(LIMITS.nameLength).optional().describe(BY_PROVIDER.image),
  sshKeys: z
    .array(z.string().min(1).max(LIMITS.sshKeyLength))
    .max(LIMITS.sshKeys)
    .optional()
    .describe(
      `SSH public keys, or key ids/names already registered at the provider (at most ${String(LIMITS.sshKeys)}).`,
    ),
  tags: z
    .array(z.string().min(1).max(LIMITS.tagLength))
    .max(LIMITS.tags)
    .optional()
    .describe(
      `Tags to keep on the VM (at most ${String(LIMITS.tags)}, each up to ${String(LIMITS.tagLength)} characters); the operator adds its own ownership tag where the provider has tags.`,
    ),
  providerOptions: z
    .record(z.string(), z.unknown())
    .meta({ maxProperties: LIMITS.providerOptions })
    .optional()
    .describe(
      "Provider-specific extras, validated by the driver's own schema (see the README per provider).",
    ),
});
export type MachineFields = z.infer<typeof MachineFieldsSchema>;

export const POWER_STATES = ["Running", "Stopped"] as const;
export type PowerState = (typeof POWER_STATES)[number];

/** What the operator may do with the VM (Crossplane's management policies). */
export const MANAGEMENT_POLICIES = ["Observe", "Create", "Update", "Delete"] as const;
export type ManagementPolicy = (typeof MANAGEMENT_POLICIES)[number];

export const CloudInstanceSpecSchema = MachineFieldsSchema.extend({
  templateRef: LocalObjectReferenceSchema.optional().describe(
    "InstanceTemplate in the same namespace to start from; fields set here override the template's.",
  ),
  powerState: z.enum(POWER_STATES).default("Running").describe("Desired power state: Running or Stopped."),
  deletionPolicy: z
    .enum(["Delete", "Orphan"])
    .default("Delete")
    .describe(
      "What deleting the object does to the VM: Delete it at the provider, or Orphan it (keep the VM).",
    ),
  updatePolicy: z
    .enum(["Safe", "AllowRebuild"])
    .default("Safe")
    .describe(
      "Safe: an image change is reported, not applied. AllowRebuild: an image change rebuilds the disk (data loss).",
    ),
  managementPolicies: z
    .array(z.enum(MANAGEMENT_POLICIES))
    .min(1)
    .max(MANAGEMENT_POLICIES.length)
    .default([...MANAGEMENT_POLICIES])
    .describe(
      "What the operator may do with the VM: Observe (read it; always implied), Create, Update (power, plan, image, tags) and Delete. " +
        "[Observe] with the external-id annotation imports a VM read-only; without Delete the VM outlives the object.",
    ),
  writeConnectionSecretToRef: LocalObjectReferenceSchema.optional().describe(
    "A Secret in this namespace, owned by this object, that the operator keeps filled with how to reach the VM: " +
      "instanceID, publicIP, privateIP, sshUser (where the image tells it) and, with sshKeyGeneration, ssh-privatekey and ssh-publickey. " +
      "It is updated when the addresses change and deleted with the object; an existing Secret not owned by this object is never overwritten.",
  ),
  sshKeyGeneration: z
    .object({
      type: z.enum(["ed25519"]).describe("Key type; ed25519."),
    })
    .optional()
    .describe(
      "Generate an SSH key pair for this VM before it is created: the public half is installed on the VM, the private half " +
        "lives only in the connection Secret (writeConnectionSecretToRef is required). Only for a VM this object creates.",
    ),
  driftPolicy: z
    .enum(["Correct", "Report"])
    .default("Correct")
    .describe(
      "A VM changed outside Kubernetes (stopped, resized, retagged at the provider): Correct brings it back to the spec, " +
        "Report only lists the change in status.drift and an Event. Changes to the spec itself are applied either way.",
    ),
}).describe("Desired state of the VM.");
export type CloudInstanceSpec = z.infer<typeof CloudInstanceSpecSchema>;

/** What the API server fills in for an empty spec (from the schema's defaults, never written twice). */
export const SPEC_DEFAULTS = (() => {
  const { powerState, deletionPolicy, updatePolicy, managementPolicies, driftPolicy } =
    CloudInstanceSpecSchema.parse({});
  return { powerState, deletionPolicy, updatePolicy, managementPolicies, driftPolicy };
})();
/** The spec as a user writes it (defaults not yet applied). */
export type CloudInstanceSpecInput = z.input<typeof CloudInstanceSpecSchema>;
