import type { V1ObjectMeta, V1OwnerReference } from "@kubernetes/client-node";
import { z } from "zod";

/**
 * A @kubernetes/client-node model as JSON carries it. client-node's own ObjectSerializer turns
 * date-time fields into Date objects; the operator's client reads plain JSON, so they stay
 * RFC 3339 strings. Type-only: nothing of client-node is loaded at runtime for these.
 */
export type Wire<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/** Kubernetes ObjectMeta (client-node's V1ObjectMeta). Not part of the CRD schema: the API server owns metadata. */
export type ObjectMeta = Wire<V1ObjectMeta>;
export type OwnerReference = Wire<V1OwnerReference>;

/**
 * Metadata of a manifest the operator reads (examples, tests): an object, checked no further
 * here — the API server validates metadata, and its fields must survive a round trip untouched.
 */
export const ObjectMetaSchema = z.custom<ObjectMeta>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  "metadata must be an object",
);

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
