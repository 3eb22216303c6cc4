import { z } from "zod";

/**
 * The parts of Kubernetes ObjectMeta the operator reads and writes. Loose, because the API
 * server adds fields (managedFields …) that must survive a read-modify-write untouched.
 * Not part of the CRD schema: the API server owns metadata.
 */
export const OwnerReferenceSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});
export type OwnerReference = z.infer<typeof OwnerReferenceSchema>;

export const ObjectMetaSchema = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z.array(OwnerReferenceSchema).optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;

/** metav1.Condition, as `kubectl wait --for=condition=X` and every dashboard expect it. */
export const ConditionSchema = z
  .object({
    type: z
      .string()
      .min(1)
      .describe("Type of condition in CamelCase: Provisioned, Running, Ready or Synced."),
    status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition: True, False or Unknown."),
    reason: z
      .string()
      .min(1)
      .describe("Machine-readable CamelCase reason for the last transition, e.g. ProviderError."),
    message: z
      .string()
      .describe("Human-readable details; carries the provider's own error text with secrets redacted."),
    lastTransitionTime: z
      .string()
      .describe("When the condition last changed status (RFC 3339); unchanged while the status holds."),
    observedGeneration: z
      .number()
      .int()
      .optional()
      .describe("metadata.generation of the object this condition was computed from."),
  })
  .describe("A metav1.Condition.");
export type Condition = z.infer<typeof ConditionSchema>;

export const LocalObjectReferenceSchema = z
  .object({
    name: z.string().min(1).describe("Name of the object in the same namespace."),
  })
  .describe("A reference to an object in the same namespace.");
