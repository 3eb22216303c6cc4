import { z } from "zod";
import { ObjectMetaSchema } from "../api/index.ts";

/**
 * The core Kubernetes kinds the operator writes itself (Events, Leases), as zod schemas so the
 * types come from one place. Loose: the API server adds fields that must survive a round trip.
 */
export const ObjectReferenceSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  namespace: z.string().optional(),
  name: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
});
export type ObjectReference = z.infer<typeof ObjectReferenceSchema>;

export const EventSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: ObjectMetaSchema,
  involvedObject: ObjectReferenceSchema,
  reason: z.string().optional(),
  message: z.string().optional(),
  type: z.enum(["Normal", "Warning"]).optional(),
  count: z.number().int().optional(),
  firstTimestamp: z.string().optional(),
  lastTimestamp: z.string().optional(),
  source: z.looseObject({ component: z.string().optional(), host: z.string().optional() }).optional(),
  reportingComponent: z.string().optional(),
  reportingInstance: z.string().optional(),
});
export type KubeEvent = z.infer<typeof EventSchema>;

export const LeaseSpecSchema = z.looseObject({
  holderIdentity: z.string().nullable().optional(),
  leaseDurationSeconds: z.number().int().optional(),
  acquireTime: z.string().nullable().optional(),
  renewTime: z.string().nullable().optional(),
  leaseTransitions: z.number().int().optional(),
});
export const LeaseSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: ObjectMetaSchema,
  spec: LeaseSpecSchema.optional(),
});
export type Lease = z.infer<typeof LeaseSchema>;
