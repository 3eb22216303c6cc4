import type { z } from "zod";
import { CloudInstanceSpecSchema } from "./instance-spec.ts";
import { CloudInstanceStatusSchema } from "./cloud-instance.ts";
import { InstanceTemplateSpecSchema, InstanceTemplateStatusSchema } from "./instance-template.ts";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

/** Everything needed to generate one CRD and to address its objects over REST. */
export interface CrdDefinition {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
  printerColumns: PrinterColumn[];
}

const readyColumn: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: "Whether the object is Ready.",
};
const ageColumn: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since creation.",
};

export const CLOUD_INSTANCE_CRD: CrdDefinition = {
  kind: "CloudInstance",
  listKind: "CloudInstanceList",
  plural: "cloudinstances",
  singular: "cloudinstance",
  shortNames: ["cinst"],
  categories: ["cloud"],
  description:
    "A virtual machine at a cloud/VPS provider, kept in line with its spec by cloud-instance-operator.",
  spec: CloudInstanceSpecSchema,
  status: CloudInstanceStatusSchema,
  printerColumns: [
    { name: "Provider", type: "string", jsonPath: ".spec.provider.name", description: "Provider driver." },
    {
      name: "Region",
      type: "string",
      jsonPath: ".status.region",
      description: "Region observed at the provider.",
    },
    { name: "Plan", type: "string", jsonPath: ".status.plan", description: "Plan observed at the provider." },
    { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Lifecycle phase." },
    {
      name: "IP",
      type: "string",
      jsonPath: ".status.addresses.public[0]",
      description: "First public IP address.",
    },
    readyColumn,
    ageColumn,
  ],
};

export const INSTANCE_TEMPLATE_CRD: CrdDefinition = {
  kind: "InstanceTemplate",
  listKind: "InstanceTemplateList",
  plural: "instancetemplates",
  singular: "instancetemplate",
  shortNames: ["itpl"],
  categories: ["cloud"],
  description:
    "The reusable part of a CloudInstance spec; with spec.replicas, a scalable set of CloudInstances.",
  spec: InstanceTemplateSpecSchema,
  status: InstanceTemplateStatusSchema,
  scale: {
    specReplicasPath: ".spec.replicas",
    statusReplicasPath: ".status.replicas",
    labelSelectorPath: ".status.selector",
  },
  printerColumns: [
    { name: "Provider", type: "string", jsonPath: ".spec.provider.name", description: "Provider driver." },
    { name: "Plan", type: "string", jsonPath: ".spec.plan", description: "Plan." },
    { name: "Replicas", type: "integer", jsonPath: ".spec.replicas", description: "Desired replicas." },
    {
      name: "Ready-Replicas",
      type: "integer",
      jsonPath: ".status.readyReplicas",
      description: "Ready replicas.",
    },
    readyColumn,
    ageColumn,
  ],
};

export const CRDS: readonly CrdDefinition[] = [CLOUD_INSTANCE_CRD, INSTANCE_TEMPLATE_CRD];
