import { z } from "zod";
import type { HttpClient, HttpRequest, HttpResponse } from "../http/client.ts";
import { errorForStatus, parseAnswer } from "../http/answer.ts";
import { TransientError, UnauthorizedError, type ProviderError } from "../errors.ts";

const AddressSchema = z.looseObject({ address: z.string().optional() });

/** The scalet model of the document's create and upgrade answers. */
export const ScaletSchema = z.looseObject({
  ctid: z.number().int(),
  name: z.string(),
  hostname: z.string().optional(),
  status: z.string(),
  locked: z.boolean().optional(),
  active: z.boolean().optional(),
  location: z.string().optional(),
  rplan: z.string().optional(),
  made_from: z.string().optional(),
  // The API answers `{}` when a scalet has no address yet (`[]`, PHP's empty map, the same).
  public_address: z
    .union([AddressSchema, z.tuple([])])
    .nullable()
    .optional(),
  private_address: z
    .union([AddressSchema, z.tuple([])])
    .nullable()
    .optional(),
  deleted: z.string().nullable().optional(),
});
export type Scalet = z.infer<typeof ScaletSchema>;

/** The task model of the document's `GET /tasks` answer. */
export const TaskSchema = z.looseObject({
  id: z.string(),
  scalet: z.number().nullable().optional(),
  method: z.string().optional(),
  done: z.boolean(),
  error: z.boolean(),
  d_insert: z.string().nullable().optional(),
});
export type Task = z.infer<typeof TaskSchema>;

/** Beyond the document (Vscale's API reference): catalogues, SSH keys, tags. */
export const RplanSchema = z.looseObject({
  id: z.string(),
  memory: z.number(),
  disk: z.number(),
  cpus: z.number(),
  locations: z.array(z.string()).optional(),
});
export type Rplan = z.infer<typeof RplanSchema>;
export const ImageSchema = z.looseObject({
  id: z.string(),
  active: z.boolean().optional(),
  rplans: z.array(z.string()).optional(),
  locations: z.array(z.string()).optional(),
});
export type Image = z.infer<typeof ImageSchema>;
export const LocationSchema = z.looseObject({ id: z.string(), active: z.boolean().optional() });
export const SshKeySchema = z.looseObject({ id: z.number().int(), name: z.string(), key: z.string() });
export type SshKey = z.infer<typeof SshKeySchema>;
export const TagSchema = z.looseObject({
  id: z.number().int(),
  name: z.string(),
  scalets: z.array(z.number()),
});
export type Tag = z.infer<typeof TagSchema>;

export interface Answer<T> {
  body: T;
  /** `Vscale-Task-Id` of a long operation, where the API sends it (not in the document). */
  taskId: string | undefined;
}

/** Answers that say "this API has no such endpoint" to a GET without parameters. */
const NO_ENDPOINT = new Set([400, 404, 405, 501]);
/** What a read of one thing answers when it does not exist. */
const GONE: ReadonlySet<number> = new Set([404]);
/** Answers that say the same to a write on a path the driver assumes beyond the document. */
export const NO_WRITE_ENDPOINT = new Set([404, 405, 501]);

/**
 * Thin typed client of the Vscale REST API (X-Token auth; errors are the status code plus
 * `Vscale-Error-Message`, some deployments add a JSON body `{error, field}`). Every text that
 * reaches an error goes through the HTTP client's Redactor.
 */
export class VscaleApi {
  readonly #http: HttpClient;
  constructor(http: HttpClient) {
    this.#http = http;
  }

  redact(text: string): string {
    return this.#http.redactor.text(text);
  }

  /** A GET of something that may not exist: undefined on 404 (a scalet deleted or never made). */
  read<T>(
    path: string,
    schema: z.ZodType<T>,
    operation: string,
    signal?: AbortSignal,
  ): Promise<T | undefined> {
    return this.#get(path, schema, operation, signal, GONE);
  }

  /**
   * A GET of an endpoint the document does not show: undefined when the API has no such
   * endpoint (400, 404, 405, 501 to a request without parameters), so callers can degrade.
   */
  optional<T>(
    path: string,
    schema: z.ZodType<T>,
    operation: string,
    signal?: AbortSignal,
  ): Promise<T | undefined> {
    return this.#get(path, schema, operation, signal, NO_ENDPOINT);
  }

  /** A GET whose answer is undefined for the statuses in `absent`. */
  async #get<T>(
    path: string,
    schema: z.ZodType<T>,
    operation: string,
    signal: AbortSignal | undefined,
    absent: ReadonlySet<number>,
  ): Promise<T | undefined> {
    const req: HttpRequest = { method: "GET", path, operation, signal };
    const res = await this.#send(req);
    if (absent.has(res.status)) return undefined;
    return this.#answer(req, res, schema).body;
  }

  /** A write whose answer is not read: every non-2xx answer is an error, 404 included. */
  async send(req: HttpRequest): Promise<void> {
    const res = await this.#send(req);
    if (res.status >= 400) throw this.#error(req, res);
  }

  /** A write: every non-2xx answer is an error, 404 included (never "done"). */
  async write<T>(req: HttpRequest, schema: z.ZodType<T>): Promise<Answer<T>> {
    return this.#answer(req, await this.#send(req), schema);
  }

  /** A cancelled call sends nothing more, whatever the transport would do with a dead signal. */
  #send(req: HttpRequest): Promise<HttpResponse> {
    if (req.signal?.aborted) return Promise.reject(cancelled(req.operation, req.signal));
    return this.#http.request(req);
  }

  #answer<T>(req: HttpRequest, res: HttpResponse, schema: z.ZodType<T>): Answer<T> {
    if (res.status >= 400) throw this.#error(req, res);
    const body = res.status === 204 || res.text === "" ? {} : res.json();
    return {
      body: parseAnswer(schema, body, {
        provider: "vscale",
        operation: req.operation,
        httpStatus: res.status,
      }),
      taskId: res.headers["vscale-task-id"],
    };
  }

  #error(req: HttpRequest, res: HttpResponse): ProviderError {
    const header = res.headers["vscale-error-message"];
    const body = res.json() as { error?: unknown; field?: unknown } | undefined;
    const text =
      typeof body?.error === "string" && body.error !== ""
        ? body.error
        : header !== undefined && header !== ""
          ? header
          : `HTTP ${String(res.status)}`;
    const field = typeof body?.field === "string" ? ` (field ${body.field})` : "";
    const message = `vscale ${req.operation}: ${this.redact(`${text}${field}`)}`;
    const details = { provider: "vscale", operation: req.operation };
    // Vscale answers 403 to any write made with a read-only token: say so, it is the usual cause.
    if (res.status === 403 && req.method !== "GET")
      return new UnauthorizedError(
        `${message}; the token in the Secret is read-only: create a full-access token in the Vscale panel`,
        { ...details, httpStatus: 403 },
      );
    return errorForStatus(res, message, details);
  }
}

/** The error of a call whose reconcile was cancelled: retryable, as the HTTP client names an abort. */
export function cancelled(operation: string, signal: AbortSignal): TransientError {
  return new TransientError(`vscale ${operation}: cancelled`, {
    provider: "vscale",
    operation,
    cause: signal.reason,
  });
}

/**
 * Waits for `work` (a load other callers may share) until it settles or this caller's signal
 * aborts, whichever is first: a cancelled call returns at once even when another caller's
 * request is still out.
 */
export function abortable<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  operation: string,
): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) {
    // Others may share `work`; its outcome is theirs, and its failure must not go unobserved.
    work.catch(() => undefined);
    return Promise.reject(cancelled(operation, signal));
  }
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      reject(cancelled(operation, signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => {
    signal.removeEventListener("abort", onAbort);
  });
}
