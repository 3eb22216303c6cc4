import { z } from "zod";
import { API_VERSION } from "./group.ts";
import { ConditionSchema, ObjectMetaSchema } from "./meta.ts";
import { CloudInstanceSpecSchema } from "./instance-spec.ts";

export const PHASES = [
  "Pending",
  "Provisioning",
  "Running",
  "Stopping",
  "Stopped",
  "Deleting",
  "Failed",
] as const;
export type Phase = (typeof PHASES)[number];

export const CONDITION_TYPES = ["Provisioned", "Running", "Ready", "Synced"] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export const CloudInstanceStatusSchema = z
  .object({
    phase: z
      .enum(PHASES)
      .optional()
      .describe("Lifecycle phase: Pending, Provisioning, Running, Stopping, Stopped, Deleting or Failed."),
    instanceID: z
      .string()
      .optional()
      .describe("The VM's id at the provider, persisted as soon as the provider returns it."),
    providerStatus: z
      .string()
      .optional()
      .describe("The provider's own status value for the VM, as last observed."),
    addresses: z
      .object({
        public: z.array(z.string()).optional().describe("Public IP addresses."),
        private: z.array(z.string()).optional().describe("Private IP addresses."),
      })
      .optional()
      .describe("IP addresses as observed at the provider."),
    plan: z.string().optional().describe("Plan as observed at the provider."),
    image: z.string().optional().describe("Image as observed at the provider."),
    region: z.string().optional().describe("Region as observed at the provider."),
    tags: z
      .array(z.string())
      .optional()
      .describe("Tags as observed at the provider (without the operator's own)."),
    usage: z
      .object({
        cpuPercent: z.number().optional().describe("CPU usage in percent, where the provider reports it."),
        memoryPercent: z
          .number()
          .optional()
          .describe("Memory usage in percent, where the provider reports it."),
        diskPercent: z.number().optional().describe("Disk usage in percent, where the provider reports it."),
      })
      .optional()
      .describe("Resource usage reported by the provider (m2s include=metrics)."),
    providerData: z
      .record(z.string(), z.string())
      .optional()
      .describe("Driver bookkeeping that must survive restarts (e.g. the multicloud private template id)."),
    observedGeneration: z
      .number()
      .int()
      .optional()
      .describe("The metadata.generation the status was computed from."),
    lastHandledRestartAt: z
      .string()
      .optional()
      .describe("Echo of the restart-requested-at annotation value whose reboot was sent."),
    lastHandledReconcileAt: z
      .string()
      .optional()
      .describe("Echo of the reconcile-requested-at annotation value last acted upon."),
    drift: z
      .array(
        z.object({
          field: z.enum(["powerState", "plan", "image", "tags"]).describe("What changed at the provider."),
          desired: z.string().describe("The spec's value."),
          observed: z.string().describe("The VM's value, as last observed."),
          since: z.string().describe("When the difference was first observed (RFC 3339)."),
        }),
      )
      .optional()
      .describe(
        "Changes made to the VM outside Kubernetes after it matched the spec; corrected or only reported as spec.driftPolicy says.",
      ),
    price: z
      .object({
        amount: z.string().describe("The price as the provider's catalogue states it (a decimal)."),
        currency: z.string().describe("Its currency."),
        period: z.enum(["hour", "month"]).describe("What the amount pays for."),
      })
      .optional()
      .describe(
        "What the VM's plan costs, where the provider's documented API gives a price; never estimated.",
      ),
    connectionSecret: z
      .object({
        name: z.string().describe("The Secret written."),
        digest: z
          .string()
          .describe("A digest of what was written, so an unchanged VM costs no Secret write."),
      })
      .optional()
      .describe("The connection Secret as last written (spec.writeConnectionSecretToRef)."),
    lastAction: z
      .object({
        action: z
          .string()
          .describe(
            "The mutating call last sent to the provider and what it asked for, e.g. Resize:performance.",
          ),
        generation: z.number().int().describe("The metadata.generation it was sent for."),
        attempts: z
          .number()
          .int()
          .describe(
            "How many times it was sent for this generation while the VM looked the same; at --no-progress-limit the operator stops sending it (Synced=False reason=NoProgress).",
          ),
        observation: z
          .string()
          .describe("A digest of the VM as observed when it was last sent; a change starts the count again."),
        time: z.string().describe("When it was last sent (RFC 3339)."),
      })
      .optional()
      .describe(
        "The no-progress guard's record of the last mutating provider call, until the VM matches the spec. A new generation, a changed VM or a new reconcile-requested-at value resets it.",
      ),
    conditions: z
      .array(ConditionSchema)
      .optional()
      .describe("Provisioned, Running, Ready and Synced conditions."),
  })
  .describe("Observed state of the VM.");
export type CloudInstanceStatus = z.infer<typeof CloudInstanceStatusSchema>;

export const CloudInstanceSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("CloudInstance"),
  metadata: ObjectMetaSchema,
  spec: CloudInstanceSpecSchema,
  status: CloudInstanceStatusSchema.optional(),
});
export type CloudInstance = z.infer<typeof CloudInstanceSchema>;
