import { z } from "zod";
import { API_VERSION } from "./group.ts";
import { ConditionSchema, ObjectMetaSchema } from "./meta.ts";
import { LIMITS, MachineFieldsSchema } from "./instance-spec.ts";

export const InstanceTemplateSpecSchema = MachineFieldsSchema.extend({
  replicas: z
    .number()
    .int()
    .min(0)
    .max(LIMITS.replicas)
    .optional()
    .describe(
      `When set, the operator owns this many CloudInstances built from the template (names <template>-<n>), at most ${String(LIMITS.replicas)} and at most the operator's --max-replicas; they are created and deleted in growing batches (1, 2, 4 …), stopping at the first failure.`,
    ),
}).describe("The reusable part of a CloudInstance spec, optionally a set of replicas.");
export type InstanceTemplateSpec = z.infer<typeof InstanceTemplateSpecSchema>;

export const InstanceTemplateStatusSchema = z
  .object({
    replicas: z.number().int().optional().describe("Number of CloudInstances owned by this template."),
    readyReplicas: z.number().int().optional().describe("Number of owned CloudInstances that are Ready."),
    selector: z
      .string()
      .optional()
      .describe("Label selector of the owned CloudInstances (for the scale subresource)."),
    providerData: z
      .record(z.string(), z.string())
      .optional()
      .describe("Driver bookkeeping, e.g. the id of the mirrored multicloud machine template."),
    observedGeneration: z
      .number()
      .int()
      .optional()
      .describe("The metadata.generation the status was computed from."),
    scaling: z
      .object({
        direction: z.enum(["Up", "Down"]).describe("Creating or deleting owned CloudInstances."),
        batch: z
          .number()
          .int()
          .describe(
            "Size of the last batch; the next one doubles once it has landed, and a failure stops it.",
          ),
      })
      .optional()
      .describe(
        "The scale-up or scale-down under way, while the template has fewer or more replicas than asked.",
      ),
    conditions: z.array(ConditionSchema).optional().describe("Ready and Synced conditions."),
  })
  .describe("Observed state of the template.");
export type InstanceTemplateStatus = z.infer<typeof InstanceTemplateStatusSchema>;

export const InstanceTemplateSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("InstanceTemplate"),
  metadata: ObjectMetaSchema,
  spec: InstanceTemplateSpecSchema,
  status: InstanceTemplateStatusSchema.optional(),
});
export type InstanceTemplate = z.infer<typeof InstanceTemplateSchema>;
