import type { CloudInstance, InstanceTemplate, InstanceTemplateStatus } from "../../api/index.ts";
import { LABEL_TEMPLATE } from "../../api/index.ts";
import { getCondition, isTrue, setCondition } from "../conditions.ts";
import { shortDigest } from "../../util/digest.ts";

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
  /** The operator's --max-replicas: more is reported, never created. */
  maxReplicas: number;
  now: number;
}

export interface TemplateDecision {
  actions: TemplateAction[];
  status: InstanceTemplateStatus;
  events: { type: "Normal" | "Warning"; reason: string; message: string }[];
}

const MAX_NAME = 253;
const MAX_LABEL_VALUE = 63;

/** `text` cut to `max` characters with a digest of the whole, so distinct long names stay distinct. */
function shortened(text: string, max: number): string {
  if (text.length <= max) return text;
  const digest = shortDigest(text);
  return `${text.slice(0, max - digest.length - 1).replace(/[^a-z0-9]+$/, "")}-${digest}`;
}

/** The template label of its instances: a label value is at most 63 characters, a name 253. */
export function templateLabelValue(template: string): string {
  return shortened(template, MAX_LABEL_VALUE);
}

/** `<template>-<n>`, within an object name's 253 characters whatever the template's name. */
export function ownedName(template: string, n: number): string {
  const suffix = `-${String(n)}`;
  return `${shortened(template, MAX_NAME - suffix.length)}${suffix}`;
}

/** Names owned instances `<template>-<n>`, the lowest free n first, so a re-run after a crash hits AlreadyExists instead of creating a twin. */
export function nextNames(template: string, existing: readonly string[], count: number): string[] {
  const taken = new Set(existing);
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const name = ownedName(template, i);
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
  return `${LABEL_TEMPLATE}=${templateLabelValue(template.metadata.name ?? "")}`;
}

/** An owned instance whose VM is not there yet and that is not failing: a create in flight. */
const creating = (i: CloudInstance): boolean =>
  i.status?.instanceID === undefined && getCondition(i.status?.conditions, "Synced")?.status !== "False";
/** An owned instance that could not get its VM (bad spec, billing, provider refusal …). */
const failing = (i: CloudInstance): boolean =>
  i.status?.instanceID === undefined && getCondition(i.status?.conditions, "Synced")?.status === "False";

/**
 * The next batch of a scale-up or scale-down, the way the ReplicaSet controller's slow start
 * goes: 1, then twice the last batch once it has landed. A batch still in flight is waited
 * for, so no more than one batch of VM creates (or deletes) is ever under way, and a mistake —
 * a spec the provider refuses, a `replicas: 0` typed by accident — costs one batch, not all.
 */
function nextBatch(
  scaling: InstanceTemplateStatus["scaling"],
  direction: "Up" | "Down",
  gap: number,
): number {
  const last = scaling?.direction === direction ? scaling.batch : 0;
  return Math.min(gap, last > 0 ? last * 2 : 1);
}

interface Work {
  status: InstanceTemplateStatus;
  events: TemplateDecision["events"];
  actions: TemplateAction[];
  set: (type: string, s: "True" | "False", reason: string, message: string) => void;
}

/** A template being deleted: its instances go first, then the remote twin, then the finalizer. */
function deletingTemplate(
  input: TemplateDecideInput,
  live: readonly CloudInstance[],
  w: Work,
): TemplateDecision {
  const { owned, referencing } = input;
  for (const i of live) w.actions.push({ type: "DeleteInstance", name: i.metadata.name ?? "" });
  const foreign = referencing.filter((i) => !owned.includes(i));
  if (referencing.length > 0) {
    const names = referencing.map((i) => i.metadata.name ?? "").sort();
    const message = `template is referenced by ${names.length} CloudInstance(s): ${names.slice(0, 10).join(", ")}${names.length > 10 ? ", …" : ""}; it is deleted once they are gone`;
    w.set("Ready", "False", "InUse", message);
    if (foreign.length > 0) w.events.push({ type: "Warning", reason: "TemplateInUse", message });
    return { actions: w.actions, status: w.status, events: w.events };
  }
  if (input.remote && w.status.providerData !== undefined && Object.keys(w.status.providerData).length > 0) {
    w.actions.push({ type: "DeleteRemoteTemplate" });
  }
  w.actions.push({ type: "RemoveFinalizer" });
  return { actions: w.actions, status: w.status, events: w.events };
}

/** One slow-start batch towards `desired`; says why the scale-up is blocked, if it is. */
function scale(
  input: TemplateDecideInput,
  live: readonly CloudInstance[],
  desired: number,
  w: Work,
): { reason: string; message: string } | undefined {
  const { template, owned } = input;
  const deleting = owned.filter((i) => i.metadata.deletionTimestamp !== undefined);
  if (live.length < desired) {
    const failed = live.filter(failing);
    if (failed.length > 0) {
      const f = failed[0];
      const why = getCondition(f?.status?.conditions, "Synced");
      delete w.status.scaling;
      return {
        reason: "ScaleUpBlocked",
        message: `not creating more: ${f?.metadata.name ?? ""} has no VM (${why?.reason ?? ""}: ${why?.message ?? ""})`,
      };
    } else if (!live.some(creating)) {
      const batch = nextBatch(template.status?.scaling, "Up", desired - live.length);
      const names = nextNames(
        template.metadata.name ?? "",
        owned.map((i) => i.metadata.name ?? ""),
        batch,
      );
      for (const name of names) w.actions.push({ type: "CreateInstance", name });
      w.status.scaling = { direction: "Up", batch };
      w.events.push({ type: "Normal", reason: "ScalingUp", message: `creating ${names.join(", ")}` });
    }
  } else if (live.length > desired) {
    if (deleting.length === 0) {
      const batch = nextBatch(template.status?.scaling, "Down", live.length - desired);
      const victims = newestFirst(live).slice(0, batch);
      for (const v of victims) w.actions.push({ type: "DeleteInstance", name: v.metadata.name ?? "" });
      w.status.scaling = { direction: "Down", batch };
      w.events.push({
        type: "Normal",
        reason: "ScalingDown",
        message: `deleting ${victims.map((v) => v.metadata.name ?? "").join(", ")}`,
      });
    }
  } else {
    delete w.status.scaling;
  }
  return undefined;
}

/** InstanceTemplate decision table: replicas, remote twin, deletion guard, status. Pure. */
export function decideTemplate(input: TemplateDecideInput): TemplateDecision {
  const { template, owned } = input;
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

  const w: Work = { status, events, actions, set };
  if (template.metadata.deletionTimestamp !== undefined) return deletingTemplate(input, live, w);

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

  const asked = template.spec.replicas;
  const desired = asked === undefined ? undefined : Math.min(asked, input.maxReplicas);
  let blocked: { reason: string; message: string } | undefined;
  if (asked !== undefined && desired !== undefined && asked > desired)
    blocked = {
      reason: "TooManyReplicas",
      message: `replicas ${String(asked)} is more than the operator allows (--max-replicas=${String(input.maxReplicas)}); keeping ${String(desired)}`,
    };
  if (desired === undefined) delete status.scaling;
  else blocked = scale(input, live, desired, w) ?? blocked;
  const ready = desired === undefined || (live.length === desired && status.readyReplicas === desired);
  if (blocked) set("Synced", "False", blocked.reason, blocked.message);
  else set("Synced", "True", "ReconcileSuccess", "template is valid");
  if (blocked && getCondition(template.status?.conditions, "Synced")?.reason !== blocked.reason)
    events.push({ type: "Warning", reason: blocked.reason, message: blocked.message });
  set(
    "Ready",
    ready ? "True" : "False",
    ready ? "Ready" : "Scaling",
    desired === undefined
      ? "template is valid"
      : `${String(status.readyReplicas)}/${String(desired)} replicas ready`,
  );
  return { actions, status, events };
}
