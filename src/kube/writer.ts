import type { KubeObject, MetadataPatch, ObjectWriter } from "../controller/ports.ts";
import type { KubeClient } from "./client.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import type { Resource } from "./resources.ts";

const STATUS_CONFLICT_RETRIES = 5;

/** The reconcilers' ObjectWriter port over the kube client, for one kind. */
export class KubeObjectWriter<T extends KubeObject & { status?: S | undefined }, S> implements ObjectWriter<
  T,
  S
> {
  readonly #client: KubeClient;
  readonly #resource: Resource<T>;

  constructor(client: KubeClient, resource: Resource<T>) {
    this.#client = client;
    this.#resource = resource;
  }

  /**
   * A merge patch carrying the object's resourceVersion: the API server rejects it with 409
   * if the object changed since it was read, so a finalizer list is never written stale.
   */
  async patchMetadata(obj: T, patch: MetadataPatch, signal?: AbortSignal): Promise<T> {
    const metadata: Record<string, unknown> = { resourceVersion: obj.metadata.resourceVersion };
    if (patch.finalizers !== undefined) metadata["finalizers"] = patch.finalizers;
    if (patch.annotations !== undefined) metadata["annotations"] = patch.annotations;
    return this.#client.patch(
      this.#resource,
      obj.metadata.namespace,
      obj.metadata.name ?? "",
      { metadata },
      "merge",
      { signal },
    );
  }

  async replaceStatus(obj: T, status: S, signal?: AbortSignal): Promise<T> {
    return this.#replaceStatus(obj, status, signal, (o) =>
      this.#client.updateStatus(this.#resource, o, { signal }),
    );
  }

  async writeStatus(obj: T, status: S, signal?: AbortSignal): Promise<void> {
    await this.#replaceStatus(obj, status, signal, (o) =>
      this.#client.updateStatusUnread(this.#resource, o, { signal }),
    );
  }

  async #replaceStatus<R>(
    obj: T,
    status: S,
    signal: AbortSignal | undefined,
    put: (o: T) => Promise<R>,
  ): Promise<R> {
    let current: T = obj;
    for (let attempt = 0; ; attempt++) {
      try {
        return await put({ ...current, status });
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= STATUS_CONFLICT_RETRIES) throw err;
        current = await this.#client.get(this.#resource, obj.metadata.namespace, obj.metadata.name ?? "", {
          signal,
        });
      }
    }
  }

  async create(obj: T, signal?: AbortSignal): Promise<T> {
    return this.#client.create(this.#resource, obj, { signal });
  }

  async delete(namespace: string, name: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#client.delete(this.#resource, namespace, name, { signal });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
}
