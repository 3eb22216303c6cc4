import { z } from "zod";
import type { HttpClient, HttpRequest, HttpResponse } from "../http/client.ts";
import { InvalidRequestError, QuotaOrBillingError, TransientError } from "../errors.ts";
import { errorForStatus, parseAnswer } from "../http/answer.ts";

/**
 * The form of the document's instance ids ("i-abc123", "i-xyz789"), a little wider after the
 * prefix. Only such an id goes into a URL: an id from an annotation cannot reach another path.
 */
export const M2S_INSTANCE_ID = /^i-[A-Za-z0-9_-]{1,64}$/;

/** Every field is optional but id and status: list items and single reads show different sets. */
export const M2sInstanceSchema = z.looseObject({
  id: z.string(),
  name: z.string().optional(),
  status: z.string(),
  plan: z.string().optional(),
  region: z.string().optional(),
  image: z.string().optional(),
  ip_address: z.string().nullable().optional(),
  ipv6_address: z.string().nullable().optional(),
  private_ip: z.string().nullable().optional(),
  tags: z.array(z.string()).optional(),
  metrics: z
    .looseObject({
      cpu_usage: z.number().optional(),
      memory_usage: z.number().optional(),
      disk_usage: z.number().optional(),
    })
    .optional(),
});
export type M2sInstance = z.infer<typeof M2sInstanceSchema>;

const OneSchema = z.looseObject({ data: M2sInstanceSchema });
const PageSchema = z.looseObject({
  data: z.array(M2sInstanceSchema),
  pagination: z.looseObject({ page: z.number(), total_pages: z.number() }).optional(),
});
export type M2sPage = z.infer<typeof PageSchema>;

/** The provider's own words from any of the error shapes m2s is known to use. */
function providerMessage(res: HttpResponse): { message: string; code: string | undefined } {
  const body = res.json();
  const fallback = res.text.trim().slice(0, 300) || `HTTP ${String(res.status)}`;
  if (typeof body !== "object" || body === null) return { message: fallback, code: undefined };
  const { error, message } = body as { error?: unknown; message?: unknown };
  if (typeof error === "object" && error !== null) {
    const e = error as { message?: unknown; code?: unknown };
    return {
      message: typeof e.message === "string" ? e.message : fallback,
      code: typeof e.code === "string" || typeof e.code === "number" ? String(e.code) : undefined,
    };
  }
  if (typeof error === "string") return { message: error, code: undefined };
  if (typeof message === "string") return { message, code: undefined };
  return { message: fallback, code: undefined };
}

/**
 * Thin typed client of the m2s REST API: one method per documented call. A 404 is "absent"
 * only where the document's calls address one instance by id (read, delete); anywhere else it
 * is an error, since it can only mean a wrong endpoint or a vanished instance under a write.
 * Every method takes the caller's signal as a required argument (possibly undefined), so no
 * request can leave without it: a cancelled reconcile sends nothing more.
 */
export class M2sApi {
  readonly #http: HttpClient;
  constructor(http: HttpClient) {
    this.#http = http;
  }

  /** The URL path of one instance (and action), refusing any id that is not of the m2s form. */
  #instancePath(id: string, operation: string, action?: string): string {
    if (!M2S_INSTANCE_ID.test(id)) {
      const shown = this.#http.redactor.text(JSON.stringify(id.slice(0, 80)));
      throw new InvalidRequestError(
        `m2s ${operation}: ${shown} is not an m2s instance id (i- followed by letters, digits, - or _); nothing was sent`,
        { provider: "m2s", operation, reason: "InvalidInstanceID" },
      );
    }
    return `/instances/${encodeURIComponent(id)}${action === undefined ? "" : `/${action}`}`;
  }

  /**
   * The answer, or undefined on a 404 when `absentOn404`; any other failure status throws.
   * Writes stop here: the document shows no body for PATCH, the actions or DELETE, so none is read.
   */
  async #send(
    req: HttpRequest,
    absentOn404: boolean,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse | undefined> {
    const res = await this.#http.request({ ...req, signal });
    if (res.status === 404 && absentOn404) return undefined;
    if (res.status >= 400) throw this.#error(req.operation, res);
    return res;
  }

  /** The parsed body, or undefined on a 404 when `absentOn404`. */
  async #call<T>(
    req: HttpRequest,
    schema: z.ZodType<T>,
    absentOn404: boolean,
    signal: AbortSignal | undefined,
  ): Promise<T | undefined> {
    const res = await this.#send(req, absentOn404, signal);
    if (res === undefined) return undefined;
    return parseAnswer(schema, res.json(), {
      provider: "m2s",
      operation: req.operation,
      httpStatus: res.status,
    });
  }

  #error(operation: string, res: HttpResponse): Error {
    const { message: raw, code } = providerMessage(res);
    const message = `m2s ${operation}: ${this.#http.redactor.text(raw)}`;
    const details = { provider: "m2s", operation, ...(code === undefined ? {} : { providerCode: code }) };
    if (res.status === 400 && /quota|limit/i.test(raw))
      return new QuotaOrBillingError(message, { ...details, httpStatus: 400 });
    return errorForStatus(res, message, details);
  }

  /** One page of `GET /instances`; a 404 here means the endpoint is not an m2s API. */
  async list(
    page: number,
    limit: number,
    region: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<M2sPage> {
    const out = await this.#call(
      { method: "GET", path: "/instances", query: { page, limit, region }, operation: "list" },
      PageSchema,
      false,
      signal,
    );
    if (out === undefined) throw new TransientError("m2s list: empty answer", { provider: "m2s" });
    return out;
  }

  async get(id: string, signal: AbortSignal | undefined): Promise<M2sInstance | undefined> {
    const out = await this.#call(
      { method: "GET", path: this.#instancePath(id, "get"), query: { include: "metrics" }, operation: "get" },
      OneSchema,
      true,
      signal,
    );
    return out?.data;
  }

  async create(body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<M2sInstance> {
    const out = await this.#call(
      { method: "POST", path: "/instances", json: body, operation: "create" },
      OneSchema,
      false,
      signal,
    );
    if (!out) throw new TransientError("m2s create: empty answer", { provider: "m2s", operation: "create" });
    return out.data;
  }

  async patch(
    id: string,
    body: Record<string, unknown>,
    operation: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    // PATCH of absolute values is safe to repeat.
    await this.#send(
      { method: "PATCH", path: this.#instancePath(id, operation), json: body, operation, idempotent: true },
      false,
      signal,
    );
  }

  async action(
    id: string,
    action: "start" | "stop" | "poweroff" | "reboot" | "rebuild",
    body: Record<string, unknown> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await this.#send(
      {
        method: "POST",
        path: this.#instancePath(id, action, action),
        ...(body ? { json: body } : {}),
        operation: action,
        // Power actions converge on a state; repeating one is harmless.
        idempotent: action !== "rebuild",
      },
      false,
      signal,
    );
  }

  /** true when the API accepted the deletion, false when it answered 404 (nothing to delete). */
  async delete(id: string, signal: AbortSignal | undefined): Promise<boolean> {
    const res = await this.#send(
      { method: "DELETE", path: this.#instancePath(id, "delete"), operation: "delete" },
      true,
      signal,
    );
    return res !== undefined;
  }
}
