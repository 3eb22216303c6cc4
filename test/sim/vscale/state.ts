import type { ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { sendJson, type FaultInjector, type SimProfile } from "../common.ts";

/** The rplans vscale.txt names, smallest first (its own order), with their sizes. */
export const VSCALE_RPLANS = [
  { id: "small", memory: 512, disk: 20480, cpus: 1, addresses: 1 },
  { id: "medium", memory: 1024, disk: 30720, cpus: 1, addresses: 1 },
  { id: "large", memory: 2048, disk: 40960, cpus: 2, addresses: 1 },
  { id: "huge", memory: 4096, disk: 61440, cpus: 2, addresses: 1 },
  { id: "monster", memory: 8192, disk: 81920, cpus: 4, addresses: 1 },
] as const;
/** spb0 is the document's location; msk0 exists in the default profile only. */
export const VSCALE_LOCATIONS = ["spb0", "msk0"] as const;
export const VSCALE_DOCUMENTED_LOCATIONS = ["spb0"] as const;
/** The three images the document names. */
export const VSCALE_IMAGES = [
  "ubuntu_14.04_64_002_master",
  "debian_8.1_64_001_master",
  "centos_7.1_64_001_master",
] as const;
/** SSH keys every simulated account holds: the ids of the document's examples. */
export const VSCALE_DOCUMENTED_KEYS = [
  {
    id: 92,
    name: "key",
    key: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDdocumented92 key@vscale",
  },
  {
    id: 72,
    name: "key",
    key: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDdocumented72 key@vscale",
  },
] as const;

/** The scalet model exactly as the document's create answer shows it, plus the sim's timer. */
export interface Scalet {
  name: string;
  deleted: string | null;
  rplan: string;
  made_from: string;
  status: string;
  hostname: string;
  created: string;
  ctid: number;
  private_address: Record<string, string>;
  location: string;
  keys: { name: string; id: number }[];
  public_address: Record<string, string>;
  active: boolean;
  locked: boolean;
  timer?: NodeJS.Timeout | undefined;
  /** The task the timer will end. */
  task?: Task | undefined;
}

/** The task model exactly as the document's `GET /tasks` answer shows it. */
export interface Task {
  location: string;
  d_insert: string;
  id: string;
  done: boolean;
  scalet: number;
  error: boolean;
  d_start: string;
  method: string;
  d_end: string | null;
}

export interface SshKey {
  id: number;
  name: string;
  key: string;
}

/** The document's date format: `27.08.2015 10:03:07`. */
export const dateText = (d: Date): string => {
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${p(d.getDate())}.${p(d.getMonth() + 1)}.${String(d.getFullYear())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};
/** The task date format: `2015-08-28 12:37:48`. */
const taskTime = (d: Date): string => d.toISOString().replace("T", " ").slice(0, 19);

/** One simulated Vscale account: its scalets, tasks, keys and tags, and how answers look. */
export class VscaleAccount {
  readonly scalets = new Map<number, Scalet>();
  readonly tasks = new Map<string, Task>();
  readonly keys = new Map<number, SshKey>();
  readonly tags = new Map<number, { id: number; name: string; scalets: number[] }>();
  readonly failTaskFor = new Set<number>();
  ctidSeq = 12600;
  keySeq = 100;
  tagSeq = 1;
  readonly profile: SimProfile;
  readonly injector: FaultInjector;

  constructor(profile: SimProfile, injector: FaultInjector) {
    this.profile = profile;
    this.injector = injector;
    for (const k of VSCALE_DOCUMENTED_KEYS) this.keys.set(k.id, { ...k });
  }

  get strict(): boolean {
    return this.profile === "strict";
  }

  /**
   * An error as the document describes it: the status code and `Vscale-Error-Message`. The
   * default profile adds the `{error, field}` body go-vscale decodes on a 400.
   */
  fail(res: ServerResponse, status: number, message: string, field?: string): void {
    const headers = { "Vscale-Error-Message": message };
    if (!this.strict && status === 400) {
      sendJson(res, status, { error: message, ...(field ? { field } : {}) }, headers);
      return;
    }
    res.writeHead(status, { ...headers, "content-length": 0 });
    res.end();
  }

  /** The document's scalet model, field for field, in its order. */
  view(s: Scalet): Record<string, unknown> {
    return {
      name: s.name,
      deleted: s.deleted,
      rplan: s.rplan,
      made_from: s.made_from,
      status: s.status,
      hostname: s.hostname,
      created: s.created,
      ctid: s.ctid,
      private_address: s.private_address,
      location: s.location,
      keys: s.keys,
      public_address: s.public_address,
      active: s.active,
      locked: s.locked,
    };
  }

  /** A task of this scalet that has not ended: the scalet is busy even when not locked. */
  running(s: Scalet): Task | undefined {
    return s.task !== undefined && !s.task.done ? s.task : undefined;
  }

  /**
   * Starts a long operation: a task is listed at once, `apply` runs when it ends (`undo`
   * instead when failNextTask asked for a failure). `lock` follows the document: a create is answered
   * locked, an upgrade unlocked. The default profile names the task in `Vscale-Task-Id`.
   */
  operate(
    s: Scalet,
    method: string,
    res: ServerResponse,
    apply: () => void,
    opts: { status?: number; lock?: boolean; answer?: Record<string, unknown>; undo?: () => void } = {},
  ): void {
    const now = taskTime(new Date());
    const task: Task = {
      location: s.location,
      d_insert: now,
      id: randomUUID(),
      done: false,
      scalet: s.ctid,
      error: false,
      d_start: now,
      method,
      d_end: null,
    };
    this.tasks.set(task.id, task);
    // A new operation (a delete during a create) ends the one it replaces.
    if (s.task && !s.task.done) this.#end(s.task, false);
    clearTimeout(s.timer);
    s.task = task;
    const lock = opts.lock ?? true;
    if (lock) s.locked = true;
    const failed = this.failTaskFor.delete(s.ctid);
    const answer = opts.answer ?? this.view(s);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (failed) opts.undo?.();
      else apply();
      if (lock) s.locked = false;
      this.#end(task, failed);
    }, this.injector.knobs.transitionMs);
    sendJson(res, opts.status ?? 200, answer, this.strict ? {} : { "Vscale-Task-Id": task.id });
  }

  #end(task: Task, failed: boolean): void {
    task.done = true;
    task.error = failed;
    task.d_end = taskTime(new Date());
    const forget = setTimeout(() => this.tasks.delete(task.id), 60_000);
    forget.unref();
  }

  close(): void {
    for (const s of this.scalets.values()) clearTimeout(s.timer);
  }
}
