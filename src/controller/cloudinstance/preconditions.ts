import type { CloudInstance } from "../../api/index.ts";
import type { ResolvedSpec } from "./resolve.ts";

/** Why an object cannot be acted on yet; terminal until the object or its template changes. */
export interface Refusal {
  reason: "InvalidSpec" | "TemplateNotReady";
  message: string;
}

/** Spec combinations the schema cannot refuse on its own, decided before any Secret is read. */
export function specRefusal(spec: CloudInstance["spec"]): Refusal | undefined {
  if (spec.sshKeyGeneration !== undefined && spec.writeConnectionSecretToRef === undefined)
    return {
      reason: "InvalidSpec",
      message:
        "sshKeyGeneration needs writeConnectionSecretToRef: the private key must have a Secret to live in",
    };
  return undefined;
}

/** What the template check needs to know about the object and its provider. */
export interface TemplateFacts {
  spec: Pick<ResolvedSpec, "templateProviderData">;
  /** The instance's templateRef name, when it has one. */
  templateName: string | undefined;
  /** The provider keeps a remote twin of each InstanceTemplate (multicloud). */
  mirrorsTemplates: boolean;
  provider: string;
  deleting: boolean;
}

/**
 * An instance built from a template whose remote twin does not exist yet waits for it. It is
 * terminal, not polled: the template's status change re-queues the object (watch-mapped). A
 * deletion never waits: nothing is created from the template then.
 */
export function templateRefusal(f: TemplateFacts): Refusal | undefined {
  if (!f.mirrorsTemplates || f.templateName === undefined || f.deleting) return undefined;
  if (Object.keys(f.spec.templateProviderData).length > 0) return undefined;
  return {
    reason: "TemplateNotReady",
    message: `InstanceTemplate "${f.templateName}" has no remote template at ${f.provider} yet`,
  };
}
