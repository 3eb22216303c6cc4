import {
  API_VERSION,
  LABEL_TEMPLATE,
  SPEC_DEFAULTS,
  type CloudInstance,
  type InstanceTemplate,
} from "../../api/index.ts";
import { templateLabelValue } from "./decide.ts";

/**
 * A CloudInstance `name` of `template`'s replicas: its spec comes from the template (only
 * templateRef and the defaults here), the label lets the template find it, and the
 * controller ownerReference lets the garbage collector delete it with the template.
 */
export function ownedInstance(template: InstanceTemplate, name: string): CloudInstance {
  const templateName = template.metadata.name ?? "";
  return {
    apiVersion: API_VERSION,
    kind: "CloudInstance",
    metadata: {
      name,
      namespace: template.metadata.namespace ?? "",
      labels: { [LABEL_TEMPLATE]: templateLabelValue(templateName) },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: "InstanceTemplate",
          name: templateName,
          uid: template.metadata.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      templateRef: { name: templateName },
      ...SPEC_DEFAULTS,
    },
  };
}
