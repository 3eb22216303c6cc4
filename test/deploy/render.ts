// Renders the Helm chart for the deploy tests and checks rendered objects against the
// deployment rules of the project (restricted Pod Security, least-privilege RBAC).
import { parseAllDocuments } from "yaml";
import { CHART_DIR, helm, helmBinary, HelmUnavailableError } from "../../scripts/helm.ts";
import type { K8sObject } from "../examples/openapi-validator.ts";

export type { K8sObject };

/** A skip reason when no helm can be found or extracted, else false. */
export const helmSkip: string | false = (() => {
  try {
    helmBinary();
    return false;
  } catch (err) {
    if (err instanceof HelmUnavailableError) return `helm unavailable: ${err.message}`;
    throw err;
  }
})();

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw d.errors[0]!;
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** `helm template` of the chart with `--set` style values, parsed. */
export function template(sets: readonly string[] = [], namespace = "ops", release = "cio"): K8sObject[] {
  const args = ["template", release, CHART_DIR, "--namespace", namespace];
  for (const s of sets) args.push("--set", s);
  return parseObjects(helm(args));
}

/** The error helm prints when rendering with these values fails (throws when it succeeds). */
export function templateError(sets: readonly string[]): string {
  try {
    template(sets);
  } catch (err) {
    return String((err as { stderr?: unknown }).stderr ?? err);
  }
  throw new Error(`helm template ${sets.join(" ")} succeeded`);
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
}

function podSpecs(objects: K8sObject[]): [string, K8sObject][] {
  const workloads = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"]);
  return objects
    .filter((o) => workloads.has(o.kind))
    .map((o) => [`${o.kind}/${o.metadata.name}`, o.spec.template.spec as K8sObject]);
}

/** Violations of the `restricted` Pod Security Standard (plus a read-only root filesystem). */
export function securityProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const specs = podSpecs(objects);
  if (specs.length === 0) problems.push("no workload rendered");
  for (const [name, pod] of specs) {
    const psc = pod.securityContext ?? {};
    if (pod.hostNetwork || pod.hostPID || pod.hostIPC) problems.push(`${name}: host namespaces`);
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])] as K8sObject[]) {
      const sc = c.securityContext ?? {};
      const at = `${name}/${c.name}`;
      if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) problems.push(`${at}: runAsNonRoot`);
      if ((sc.runAsUser ?? psc.runAsUser) === 0) problems.push(`${at}: runs as root`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation`);
      if (sc.privileged === true) problems.push(`${at}: privileged`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem`);
      const drop: unknown[] = sc.capabilities?.drop ?? [];
      if (!drop.includes("ALL")) problems.push(`${at}: capabilities not dropped`);
      const add: unknown[] = sc.capabilities?.add ?? [];
      if (add.some((cap) => cap !== "NET_BIND_SERVICE")) problems.push(`${at}: capabilities added`);
      const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
      if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") problems.push(`${at}: seccomp`);
      if (c.resources?.requests === undefined || c.resources?.limits?.memory === undefined)
        problems.push(`${at}: resources`);
    }
    for (const v of (pod.volumes ?? []) as K8sObject[]) if (v.hostPath) problems.push(`${name}: hostPath volume`);
  }
  return problems;
}

export interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** RBAC rules that use wildcards, grant more than reading Secrets, or escalate. */
export function rbacProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const role of objects.filter((o) => o.kind === "ClusterRole" || o.kind === "Role")) {
    const at = `${role.kind}/${role.metadata.name}`;
    if (role.aggregationRule) problems.push(`${at}: aggregationRule`);
    for (const rule of (role.rules ?? []) as Rule[]) {
      const urls = (rule as { nonResourceURLs?: string[] }).nonResourceURLs;
      if (urls) {
        // The one non-resource rule: reading /metrics, for scrapers to be bound to (never the operator).
        if (JSON.stringify(urls) !== '["/metrics"]' || JSON.stringify(rule.verbs) !== '["get"]')
          problems.push(`${at}: nonResourceURLs ${JSON.stringify(rule)}`);
        continue;
      }
      const all = [...rule.apiGroups, ...rule.resources, ...rule.verbs, ...(rule.resourceNames ?? [])];
      if (all.some((x) => x.includes("*"))) problems.push(`${at}: wildcard in ${JSON.stringify(rule)}`);
      for (const verb of ["escalate", "bind", "impersonate"])
        if (rule.verbs.includes(verb)) problems.push(`${at}: ${verb}`);
      if (rule.apiGroups.includes("") && rule.resources.includes("secrets")) {
        // Reads, and the writes connection Secrets need; never patch/deletecollection/escalation.
        const extra = rule.verbs.filter((v) => !["get", "list", "watch", "create", "update", "delete"].includes(v));
        if (extra.length > 0) problems.push(`${at}: secrets ${extra.join(",")}`);
      }
    }
  }
  const readers = new Set(
    objects
      .filter((o) => o.kind === "ClusterRole" && (o.rules ?? []).some((r: { nonResourceURLs?: unknown }) => r.nonResourceURLs))
      .map((o) => o.metadata.name as string),
  );
  for (const b of objects.filter((o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding")) {
    if (readers.has(b.roleRef.name)) problems.push(`${b.kind}/${b.metadata.name}: the chart binds the metrics reader role itself`);
    if (["cluster-admin", "admin", "edit"].includes(b.roleRef.name))
      problems.push(`${b.kind}/${b.metadata.name}: binds ${b.roleRef.name}`);
  }
  return problems;
}
