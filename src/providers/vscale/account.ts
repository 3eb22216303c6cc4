import { z } from "zod";
import { NotFoundError, ProviderError, UnsupportedError } from "../errors.ts";
import { SharedLoad } from "./shared.ts";
import { NO_WRITE_ENDPOINT, TagSchema, TaskSchema, type Tag, type Task, type VscaleApi } from "./api.ts";

/** How long "this account's API has no tags endpoint" is believed before it is probed again. */
export const TAGS_REPROBE_MS = 60 * 60 * 1000;
const TAG_LIST_TTL_MS = 5_000;
const TASK_LIST_TTL_MS = 5_000;
/** A task seen running is re-read with a list at most this old, so its end is seen soon. */
const RUNNING_TASK_TTL_MS = 500;

const TagListSchema = z.array(TagSchema);

/**
 * The tags API (`/scalets/tags`), which the document does not show. Whether it exists is a
 * fact about the account's API, kept here (never per object): where it is absent no tag can
 * exist, so scalets are observed with no tags and `setTags` refuses without sending anything.
 */
export class VscaleTags {
  readonly #api: VscaleApi;
  readonly #now: () => number;
  readonly #list: SharedLoad<Tag[] | null>;
  #absentUntil = 0;

  constructor(api: VscaleApi, now: () => number = Date.now) {
    this.#api = api;
    this.#now = now;
    this.#list = new SharedLoad(now);
  }

  /** The account's API is known to have no tags endpoint (until the next probe). */
  get absent(): boolean {
    return this.#now() < this.#absentUntil;
  }

  /** Null: no tags endpoint. A body that is not a tag list means the same: it is not that API. */
  async #load(signal: AbortSignal | undefined): Promise<Tag[] | null> {
    const tags = await this.#api.optional(
      "/scalets/tags",
      TagListSchema.nullable().catch(null),
      "tags",
      signal,
    );
    if (tags) return tags;
    this.#markAbsent();
    return null;
  }

  #markAbsent(): void {
    this.#absentUntil = this.#now() + TAGS_REPROBE_MS;
    this.#list.clear();
  }

  /** The scalet's tags: [] where the API has none, undefined when they cannot be read now. */
  async of(ctid: number, signal?: AbortSignal): Promise<string[] | undefined> {
    if (this.absent) return [];
    try {
      const all = await this.#list.get(TAG_LIST_TTL_MS, (s) => this.#load(s), signal, "tags");
      return all === null ? [] : all.filter((t) => t.scalets.includes(ctid)).map((t) => t.name);
    } catch (err) {
      // A cancelled read ends here: its caller must not act on a half observation.
      if (signal?.aborted === true) throw err;
      // A tag list that fails to load must not hide the scalet itself: tags stay unknown.
      return undefined;
    }
  }

  #unsupported(): UnsupportedError {
    return new UnsupportedError(
      "this Vscale API has no tags endpoint (/scalets/tags is not part of Vscale's documented API): remove spec.tags",
      { provider: "vscale", operation: "tags" },
    );
  }

  async set(ctid: number, wanted: readonly string[], signal?: AbortSignal): Promise<void> {
    if (this.absent) throw this.#unsupported();
    this.#list.clear();
    const all = await this.#list.get(TAG_LIST_TTL_MS, (s) => this.#load(s), signal, "tags");
    if (all === null) throw this.#unsupported();
    const want = new Set(wanted);
    try {
      for (const tag of all) {
        const has = tag.scalets.includes(ctid);
        if (has === want.has(tag.name)) continue;
        const scalets = has ? tag.scalets.filter((c) => c !== ctid) : [...tag.scalets, ctid];
        // A 404 here is that tag gone meanwhile: an error, and the next pass re-reads the list.
        await this.#api.write(
          {
            method: "PUT",
            path: `/scalets/tags/${String(tag.id)}`,
            json: { name: tag.name, scalets },
            operation: "tags",
            signal,
          },
          TagSchema,
        );
      }
      for (const name of want) {
        if (all.some((t) => t.name === name)) continue;
        await this.#create(name, ctid, signal);
      }
    } finally {
      this.#list.clear();
    }
  }

  async #create(name: string, ctid: number, signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.#api.write(
        { method: "POST", path: "/scalets/tags", json: { name, scalets: [ctid] }, operation: "tags", signal },
        TagSchema,
      );
    } catch (err) {
      // Listed but not writable: the endpoint is not the tags API the driver knows.
      if (
        err instanceof NotFoundError ||
        (err instanceof ProviderError && NO_WRITE_ENDPOINT.has(err.httpStatus ?? 0))
      ) {
        this.#markAbsent();
        throw this.#unsupported();
      }
      throw err;
    }
  }
}

/**
 * The account's `GET /tasks` list (documented), shared by every scalet's read: the latest task
 * of a scalet says whether an operation still runs on it and whether the last one failed.
 */
export class VscaleTasks {
  readonly #api: VscaleApi;
  readonly #list = new SharedLoad<{ loadedFrom: number; tasks: Task[] }>();
  /** Counts writes: a list whose load began before the last write may lack the task it started. */
  #writes = 0;

  constructor(api: VscaleApi) {
    this.#api = api;
  }

  /** Around a write (before and after it): the next read must see the task it started. */
  invalidate(): void {
    this.#writes++;
    this.#list.clear();
  }

  async #load(signal: AbortSignal | undefined): Promise<{ loadedFrom: number; tasks: Task[] }> {
    const loadedFrom = this.#writes;
    const tasks = (await this.#api.optional("/tasks", z.array(TaskSchema), "tasks", signal)) ?? [];
    return { loadedFrom, tasks };
  }

  async #tasks(ttlMs: number, signal: AbortSignal | undefined): Promise<Task[]> {
    const load = (s: AbortSignal | undefined) => this.#load(s);
    let list = await this.#list.get(ttlMs, load, signal, "tasks");
    if (list.loadedFrom !== this.#writes) {
      this.#list.clear();
      list = await this.#list.get(ttlMs, load, signal, "tasks");
    }
    return list.tasks;
  }

  /** The scalet's most recent task, or undefined when none is listed or the list is unreadable. */
  async latest(ctid: number, signal?: AbortSignal): Promise<Task | undefined> {
    try {
      let task = latestOf(await this.#tasks(TASK_LIST_TTL_MS, signal), ctid);
      if (task?.done === false) task = latestOf(await this.#tasks(RUNNING_TASK_TTL_MS, signal), ctid);
      return task;
    } catch (err) {
      // A cancelled read ends here: its caller must not act on a half observation.
      if (signal?.aborted === true) throw err;
      return undefined;
    }
  }
}

function latestOf(tasks: readonly Task[], ctid: number): Task | undefined {
  let best: Task | undefined;
  for (const t of tasks) {
    if (t.scalet !== ctid) continue;
    // `d_insert` is "YYYY-MM-DD hh:mm:ss", so text order is time order; later in the list wins a tie.
    if (best === undefined || (t.d_insert ?? "") >= (best.d_insert ?? "")) best = t;
  }
  return best;
}
