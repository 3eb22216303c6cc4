import type { CloudInstance, InstanceTemplate, InstanceTemplateStatus } from "../../api/index.ts";
import { LABEL_TEMPLATE } from "../../api/index.ts";
import { isTrue, setCondition } from "../conditions.ts";

export type TemplateAction =
  | { type: "CreateInstance"; name: string }
  | { type: "DeleteInstance"; name: string }
  | { type: "SyncRemoteTemplate" }
  | { type: "DeleteRemoteTemplate" }
  | { type: "RemoveFinalizer" };

export interface TemplateDecideInput {
  template: InstanceTemplate;
  /** CloudInstances owned by this template (ownerReference with its UID). */
  owned: readonly CloudInstance[];
  /** CloudInstances whose templateRef names this template (owned ones included). */
  referencing: readonly CloudInstance[];
  /** Error from validating providerOptions/provider fields, if any. */
  invalid: string | undefined;
  /** The driver mirrors templates remotely (multicloud). */
  remote: boolean;
  /** The remote twin exists as recorded in status.providerData (undefined: not checked). */
  remoteExists: boolean | undefined;
  now: number;
}

export interface TemplateDecision {
  actions: TemplateAction[];
  status: InstanceTemplateStatus;
  events: { type: "Normal" | "Warning"; reason: string; message: string }[];
}

/** Names owned instances `<template>-<n>`, the lowest free n first, so a re-run after a crash hits AlreadyExists instead of creating a twin. */
export function nextNames(template: string, existing: readonly string[], count: number): string[] {
  const taken = new Set(existing);
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const name = `${template}-${i}`;
    if (!taken.has(name)) out.push(name);
  }
  return out;
}

/** Newest first (creationTimestamp, then the higher index), the order scale-down removes in. */
export function newestFirst(instances: readonly CloudInstance[]): CloudInstance[] {
  const index = (n: string | undefined): number => Number(/-(\d+)$/.exec(n ?? "")?.[1] ?? -1);
  return [...instances].sort(
    (a, b) =>
      (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? "") ||
      index(b.metadata.name) - index(a.metadata.name),
  );
}

export function selectorFor(template: InstanceTemplate): string {
  return `${LABEL_TEMPLATE}=${template.metadata.name ?? ""}`;
}

/** InstanceTemplate decision table: replicas, remote twin, deletion guard, status. Pure. */
export function decideTemplate(input: TemplateDecideInput): TemplateDecision {
  const { template, owned, referencing } = input;
  const generation = template.metadata.generation;
  const now = new Date(input.now).toISOString();
  const status: InstanceTemplateStatus = { ...template.status };
  if (generation !== undefined) status.observedGeneration = generation;
  const set = (type: string, s: "True" | "False", reason: string, message: string): void => {
    status.conditions = setCondition(
      status.conditions,
      { type, status: s, reason, message },
      now,
      generation,
    );
  };
  const events: TemplateDecision["events"] = [];
  const actions: TemplateAction[] = [];
  const live = owned.filter((i) => i.metadata.deletionTimestamp === undefined);
  status.replicas = live.length;
  status.readyReplicas = live.filter((i) => isTrue(i.status?.conditions, "Ready")).length;
  status.selector = selectorFor(template);

  if (template.metadata.deletionTimestamp !== undefined) {
    for (const i of live) actions.push({ type: "DeleteInstance", name: i.metadata.name ?? "" });
    const foreign = referencing.filter((i) => !owned.includes(i));
    if (referencing.length > 0) {
      const names = referencing.map((i) => i.metadata.name ?? "").sort();
      const message = `template is referenced by ${names.length} CloudInstance(s): ${names.slice(0, 10).join(", ")}${names.length > 10 ? ", …" : ""}; it is deleted once they are gone`;
      set("Ready", "False", "InUse", message);
      if (foreign.length > 0) events.push({ type: "Warning", reason: "TemplateInUse", message });
      return { actions, status, events };
    }
    if (input.remote && status.providerData !== undefined && Object.keys(status.providerData).length > 0) {
      actions.push({ type: "DeleteRemoteTemplate" });
    }
    actions.push({ type: "RemoveFinalizer" });
    return { actions, status, events };
  }

  if (input.invalid !== undefined) {
    set("Ready", "False", "InvalidSpec", input.invalid);
    set("Synced", "False", "InvalidSpec", input.invalid);
    return { actions, status, events: [{ type: "Warning", reason: "InvalidSpec", message: input.invalid }] };
  }

  if (
    input.remote &&
    (status.providerData === undefined ||
      input.remoteExists === false ||
      template.metadata.generation !== template.status?.observedGeneration)
  ) {
    if (input.remoteExists === false)
      events.push({
        type: "Warning",
        reason: "RemoteTemplateMissing",
        message: "the remote machine template vanished; recreating it",
      });
    actions.push({ type: "SyncRemoteTemplate" });
  }

  const desired = template.spec.replicas;
  if (desired !== undefined) {
    if (live.length < desired) {
      const names = nextNames(
        template.metadata.name ?? "",
        owned.map((i) => i.metadata.name ?? ""),
        desired - live.length,
      );
      for (const name of names) actions.push({ type: "CreateInstance", name });
      events.push({ type: "Normal", reason: "ScalingUp", message: `creating ${names.join(", ")}` });
    } else if (live.length > desired) {
      const victims = newestFirst(live).slice(0, live.length - desired);
      for (const v of victims) actions.push({ type: "DeleteInstance", name: v.metadata.name ?? "" });
      events.push({
        type: "Normal",
        reason: "ScalingDown",
        message: `deleting ${victims.map((v) => v.metadata.name ?? "").join(", ")}`,
      });
    }
  }
  const ready = desired === undefined || (live.length === desired && status.readyReplicas === desired);
  set("Synced", "True", "ReconcileSuccess", "template is valid");
  set(
    "Ready",
    ready ? "True" : "False",
    ready ? "Ready" : "Scaling",
    desired === undefined ? "template is valid" : `${status.readyReplicas}/${desired} replicas ready`,
  );
  return { actions, status, events };
}
