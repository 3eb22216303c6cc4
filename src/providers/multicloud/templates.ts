import { z } from "zod";
import { absentIfNotFound, NotFoundError, TransientError } from "../errors.ts";
import {
  ClusterSchema,
  clusterSegment,
  InstanceSchema,
  isAmbiguous,
  type Cluster,
  type Instance,
  type MulticloudApi,
  type Signal,
} from "./api.ts";

/** jupiter's Status for a deleted instance (the document's lists and reads leave such rows out). */
export const DELETED = 5;

/**
 * A row of the list of every instance, as far as it is matched: by its id and its template's
 * id. The rest is kept as it came and parsed (InstanceSchema) only for the row asked for, so one
 * odd row of another tenant hides nothing but itself; a row whose id or template id has
 * another type matches nothing.
 */
const ListedRowSchema = z
  .looseObject({
    InstanceId: z.string().optional().catch(undefined),
    Cluster: z.looseObject({ Id: z.number() }).nullable().optional().catch(undefined),
  })
  .catch({});
type ListedRow = z.infer<typeof ListedRowSchema>;

/** jupiter's machine templates (`/v1/cluster`) and the instances made from them. */
export class RemoteTemplates {
  readonly #api: MulticloudApi;
  constructor(api: MulticloudApi) {
    this.#api = api;
  }

  list(signal: Signal): Promise<Cluster[]> {
    return this.#api.call(
      { method: "GET", path: "/v1/cluster", operation: "templates", signal },
      z.array(ClusterSchema),
    );
  }

  /** The template, or undefined when jupiter says it has no such row. */
  async get(id: string, signal: Signal): Promise<Cluster | undefined> {
    return await absentIfNotFound(
      this.#api.call(
        {
          method: "GET",
          path: `/v1/cluster/${clusterSegment(id, "template")}`,
          operation: "template",
          signal,
        },
        ClusterSchema,
      ),
    );
  }

  /**
   * Finds or creates the template with this exact name. The name carries an owner's UID (and
   * a digest of the fields), so a create whose answer a crash lost is found, never repeated.
   */
  async ensure(name: string, body: () => Promise<Record<string, unknown>>, signal: Signal): Promise<string> {
    const existing = (await this.list(signal)).find((c) => c.Name === name);
    if (existing) return String(existing.Id);
    const id = await this.#api.call(
      { method: "POST", path: "/v1/cluster", json: await body(), operation: "createTemplate", signal },
      z.union([z.number().int(), z.string().regex(/^\d+$/)]),
    );
    return String(id);
  }

  /**
   * Deletes a template; one already gone counts as deleted. The document answers "Delete
   * cluster err" both for a template that does not exist and for one it will not delete (the
   * source refuses while instances of it are not deleted), so an ambiguous refusal is settled
   * by reading the template back.
   */
  async delete(id: string, signal: Signal): Promise<void> {
    const segment = clusterSegment(id, "deleteTemplate");
    try {
      await this.#api.send({
        method: "DELETE",
        path: `/v1/cluster/${segment}`,
        operation: "deleteTemplate",
        signal,
      });
    } catch (err) {
      if (err instanceof NotFoundError) return;
      if (!isAmbiguous(err)) throw err;
      const still = await this.get(id, signal);
      if (still === undefined) return;
      const refusal = err as TransientError;
      throw new TransientError(
        `multicloud deleteTemplate: template ${id} still exists (${refusal.message}); ` +
          `jupiter refuses to delete a template while instances made from it are not deleted`,
        {
          provider: "multicloud",
          operation: "deleteTemplate",
          ...(refusal.providerCode === undefined ? {} : { providerCode: refusal.providerCode }),
        },
      );
    }
  }

  /** Instances made from a template that are not deleted. */
  async instances(id: string, signal: Signal): Promise<Instance[]> {
    const rows = await this.#api.call(
      {
        method: "GET",
        path: `/v1/instance/cluster/${clusterSegment(id, "list")}`,
        operation: "list",
        signal,
      },
      z.array(InstanceSchema),
    );
    return rows.filter((i) => i.Status !== DELETED);
  }

  /**
   * Deletes the private templates (see PRIVATE_TEMPLATE) no instance uses any more. A private
   * template holds its object's only instance, so an empty one is left over from a create
   * whose answer was lost (the object then adopted its instance without learning the
   * template's id). jupiter refuses to delete a template in use, so a race with an expand
   * costs that object one retry, never its instance. Returns how many were deleted.
   */
  async sweep(isPrivate: (name: string) => boolean, signal: Signal): Promise<number> {
    const clusters = await this.list(signal);
    const rows = await this.all(signal);
    const used = new Set(rows.map((r) => r.Cluster?.Id));
    let deleted = 0;
    for (const c of clusters) {
      if (!isPrivate(c.Name) || used.has(c.Id)) continue;
      // One that cannot be deleted now is tried again at the next sweep.
      if (
        await this.delete(String(c.Id), signal).then(
          () => true,
          () => false,
        )
      )
        deleted++;
    }
    return deleted;
  }

  /**
   * Every instance that is not deleted, each row only as far as it is matched (see ListedRow):
   * jupiter's list is one answer, no pages (the document shows no paging parameter), so one
   * call whatever the account holds.
   */
  all(signal: Signal): Promise<ListedRow[]> {
    return this.#api.call(
      { method: "GET", path: "/v1/instance/list", operation: "listAll", signal },
      z.array(ListedRowSchema),
    );
  }

  /**
   * One instance from the list of every instance not deleted (`GET /v1/instance/list`), or
   * undefined when it is not in it. Only the row asked for is parsed, so one odd row of
   * another tenant cannot hide it.
   */
  async fromList(instanceId: string, signal: Signal): Promise<Instance | undefined> {
    const rows = await this.all(signal);
    const row = rows.find((r) => r.InstanceId === instanceId);
    if (row === undefined) return undefined;
    const parsed = InstanceSchema.safeParse(row);
    if (!parsed.success)
      throw new TransientError(`multicloud listAll: malformed row for instance ${instanceId}`, {
        provider: "multicloud",
        operation: "listAll",
      });
    return parsed.data;
  }
}
