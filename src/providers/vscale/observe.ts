import {
  mapState,
  observedHead,
  type MappedState,
  type ObservedMachine,
  type ObservedPhase,
  type StateTable,
} from "../driver.ts";
import { InvalidRequestError } from "../errors.ts";
import type { Scalet, Task } from "./api.ts";

/**
 * The ownership mark ends the scalet name: `<namespace>-<name>--cio-<uid>[--<cluster>]`. The
 * name is the one field of the document's scalet model the operator writes and reads back
 * (no tags, no metadata in the document), so the owner UID and the cluster identity share it.
 */
export const OWNER_SEPARATOR = "--cio-";
/** Separates the cluster identity from the UID: a Kubernetes UID (a UUID) never holds "--". */
const CLUSTER_SEPARATOR = "--";
/** The readable part is cut here, so a mark with the longest cluster (16) stays ≤ 120 characters. */
export const READABLE_MAX = 60;

export interface Mark {
  ownerUID: string;
  /** Absent on scalets marked before marks carried a cluster, or by a cluster without one. */
  cluster?: string;
}

/**
 * `defined` is the document's; `started`/`stopped`/`billing` are what public clients show
 * (the document names no status for a running or stopped scalet).
 */
export const STATES: StateTable = {
  defined: { phase: "Provisioning", transitional: true },
  started: { phase: "Running", transitional: false },
  stopped: { phase: "Stopped", transitional: false },
  billing: {
    phase: "Stopped",
    transitional: false,
    message: "blocked by Vscale for non-payment (status billing): top up the account balance",
  },
};

/** The scalet name the driver creates: readable first (the panel shows it), the mark last. */
export function markedName(namespace: string, name: string, ownerUID: string, cluster: string): string {
  const readable = `${namespace}-${name}`.slice(0, READABLE_MAX);
  const tail = cluster === "" ? "" : `${CLUSTER_SEPARATOR}${cluster}`;
  return `${readable}${OWNER_SEPARATOR}${ownerUID}${tail}`;
}

/** The mark in a scalet name; undefined for a scalet the operator never named. */
export function markOf(name: string): Mark | undefined {
  const at = name.lastIndexOf(OWNER_SEPARATOR);
  if (at < 0) return undefined;
  const rest = name.slice(at + OWNER_SEPARATOR.length);
  const cut = rest.indexOf(CLUSTER_SEPARATOR);
  const ownerUID = cut < 0 ? rest : rest.slice(0, cut);
  const cluster = cut < 0 ? "" : rest.slice(cut + CLUSTER_SEPARATOR.length);
  if (ownerUID === "") return undefined;
  return cluster === "" ? { ownerUID } : { ownerUID, cluster };
}

/**
 * A ctid as it may go into a path or a body: digits only, so an id from an annotation can
 * never address another resource (`../sshkeys`). Refused before anything is sent.
 */
export function scaletId(id: string, redact: (text: string) => string): string {
  if (/^[1-9]\d{0,11}$/.test(id)) return id;
  const shown = JSON.stringify(id.length > 64 ? `${id.slice(0, 64)}…` : id);
  throw new InvalidRequestError(
    redact(`vscale: ${shown} is not a Vscale scalet id (a ctid is a number such as 12600); nothing was sent`),
    { provider: "vscale", reason: "InvalidInstanceId" },
  );
}

/**
 * The phase a status stands for. `updated` is the document's status after an upgrade: it says
 * nothing about power, so `active` (false while a scalet is being made, true on the document's
 * running scalet) tells. Any other unknown status is waited on, never acted upon.
 */
function phaseOf(s: Scalet): MappedState {
  if (s.status === "updated" && s.active !== undefined)
    return { phase: s.active ? "Running" : "Stopped", transitional: false };
  return mapState(STATES, s.status, "Vscale");
}

const address = (a: Scalet["public_address"]): string[] =>
  a && !Array.isArray(a) && typeof a.address === "string" && a.address !== "" ? [a.address] : [];

/**
 * The scalet as the operator sees it. `task` is this scalet's latest task from `GET /tasks`
 * (read only while it is unlocked): one still running keeps it transitional (an upgrade is
 * answered unlocked), a failed one is reported, and a failed create is phase Failed.
 */
export function observe(s: Scalet, tags: string[] | undefined, task: Task | undefined): ObservedMachine {
  const mapped = phaseOf(s);
  // A deletion whose task failed is not under way any more: the reconciler may send it again.
  const deleteFailed = task?.method === "scalet_delete" && task.done && task.error;
  const deleting = s.deleted !== null && s.deleted !== undefined && !deleteFailed;
  let phase: ObservedPhase = deleting ? "Deleting" : mapped.phase;
  let message = mapped.message;
  const what = task?.method ?? task?.id;
  const running = task?.done === false;
  if (running) message = `waiting for Vscale task ${what ?? "?"}`;
  else if (task?.error === true) {
    message = `Vscale task ${what ?? "?"} for this scalet failed`;
    if (task.method === "scalet_create" && s.status === "defined" && !deleting) phase = "Failed";
  }
  const state: MappedState = {
    phase,
    // `locked` means an operation is running: wait for it, never fail on it.
    transitional: deleting || s.locked === true || running || (mapped.transitional && phase !== "Failed"),
    ...(message === undefined ? {} : { message }),
    ...(mapped.unknownStatus && !running && !deleting ? { unknownStatus: true as const } : {}),
  };
  return {
    ...observedHead(String(s.ctid), s.status, state, markOf(s.name)),
    name: s.name,
    ...(s.location === undefined ? {} : { region: s.location }),
    ...(s.rplan === undefined ? {} : { plan: s.rplan }),
    ...(s.made_from === undefined ? {} : { image: s.made_from }),
    ...(tags === undefined ? {} : { tags }),
    addresses: { public: address(s.public_address), private: address(s.private_address) },
  };
}
