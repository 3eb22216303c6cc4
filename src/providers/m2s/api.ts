import { z } from "zod";
import type { HttpClient, HttpRequest, HttpResponse } from "../http/client.ts";
import { NotFoundError, QuotaOrBillingError, TransientError } from "../errors.ts";
import { errorForStatus, parseAnswer } from "../http/answer.ts";

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

/** The provider's own words from any of the error shapes m2s is known to use. */
function providerMessage(res: HttpResponse): { message: string; code: string | undefined } {
  const body = res.json();
  const fallback = res.text.trim().slice(0, 300) || `HTTP ${res.status}`;
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

/** Thin typed client of the m2s REST API: one method per documented call. */
export class M2sApi {
  readonly #http: HttpClient;
  constructor(http: HttpClient) {
    this.#http = http;
  }

  /** undefined on 404; the parsed body otherwise. */
  async #call<T>(req: HttpRequest, schema: z.ZodType<T>): Promise<T | undefined> {
    const res = await this.#http.request(req);
    if (res.status === 404) return undefined;
    if (res.status >= 400) throw this.#error(req.operation, res);
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

  async list(page: number, limit: number, region: string | undefined): Promise<z.infer<typeof PageSchema>> {
    const out = await this.#call(
      { method: "GET", path: "/instances", query: { page, limit, region }, operation: "list" },
      PageSchema,
    );
    return out ?? { data: [] };
  }

  async get(id: string): Promise<M2sInstance | undefined> {
    const out = await this.#call(
      {
        method: "GET",
        path: `/instances/${encodeURIComponent(id)}`,
        query: { include: "metrics" },
        operation: "get",
      },
      OneSchema,
    );
    return out?.data;
  }

  async create(body: Record<string, unknown>): Promise<M2sInstance> {
    const out = await this.#call(
      { method: "POST", path: "/instances", json: body, operation: "create" },
      OneSchema,
    );
    if (!out) throw new TransientError("m2s create: empty answer", { provider: "m2s", operation: "create" });
    return out.data;
  }

  async patch(id: string, body: Record<string, unknown>, operation: string): Promise<void> {
    // PATCH of absolute values is safe to repeat.
    const found = await this.#call(
      {
        method: "PATCH",
        path: `/instances/${encodeURIComponent(id)}`,
        json: body,
        operation,
        idempotent: true,
      },
      OneSchema,
    );
    if (found === undefined)
      throw new NotFoundError(`m2s ${operation}: instance ${id} not found`, { provider: "m2s", operation });
  }

  async action(
    id: string,
    action: "start" | "stop" | "poweroff" | "reboot" | "rebuild",
    body?: Record<string, unknown>,
  ): Promise<void> {
    const found = await this.#call(
      {
        method: "POST",
        path: `/instances/${encodeURIComponent(id)}/${action}`,
        ...(body ? { json: body } : {}),
        operation: action,
        // Power actions converge on a state; repeating one is harmless.
        idempotent: action !== "rebuild",
      },
      z.unknown().transform(() => true),
    );
    if (found === undefined)
      throw new NotFoundError(`m2s ${action}: instance ${id} not found`, {
        provider: "m2s",
        operation: action,
      });
  }

  /** Resolves when deleted or already gone. */
  async delete(id: string): Promise<void> {
    await this.#call(
      { method: "DELETE", path: `/instances/${encodeURIComponent(id)}`, operation: "delete" },
      z.unknown(),
    );
  }
}
