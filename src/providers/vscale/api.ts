import { z } from "zod";
import type { HttpClient, HttpRequest, HttpResponse } from "../http/client.ts";
import { errorForStatus, parseAnswer } from "../http/answer.ts";
import { UnauthorizedError, type ProviderError } from "../errors.ts";

const AddressSchema = z.looseObject({ address: z.string().optional() });

export const ScaletSchema = z.looseObject({
  ctid: z.number(),
  name: z.string(),
  hostname: z.string().optional(),
  status: z.string(),
  locked: z.boolean().optional(),
  active: z.boolean().optional(),
  location: z.string().optional(),
  rplan: z.string().optional(),
  made_from: z.string().optional(),
  // The API answers `{}` when a scalet has no address yet.
  public_address: z
    .union([AddressSchema, z.array(z.unknown())])
    .nullable()
    .optional(),
  private_address: z
    .union([AddressSchema, z.array(z.unknown())])
    .nullable()
    .optional(),
  deleted: z.string().nullable().optional(),
});
export type Scalet = z.infer<typeof ScaletSchema>;

export const TaskSchema = z.looseObject({
  id: z.string(),
  scalet: z.number().nullable().optional(),
  method: z.string().optional(),
  done: z.boolean(),
  error: z.boolean(),
});
export type Task = z.infer<typeof TaskSchema>;

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
export const SshKeySchema = z.looseObject({ id: z.number(), name: z.string(), key: z.string() });
export const TagSchema = z.looseObject({ id: z.number(), name: z.string(), scalets: z.array(z.number()) });
export type Tag = z.infer<typeof TagSchema>;

export interface Answer<T> {
  body: T;
  /** `Vscale-Task-Id` of a long operation. */
  taskId: string | undefined;
}

/** Thin typed client of the Vscale REST API (X-Token auth, errors in `Vscale-Error-Message`). */
export class VscaleApi {
  readonly #http: HttpClient;
  constructor(http: HttpClient) {
    this.#http = http;
  }

  /** undefined on 404. */
  async call<T>(req: HttpRequest, schema: z.ZodType<T>): Promise<Answer<T> | undefined> {
    const res = await this.#http.request(req);
    if (res.status === 404) return undefined;
    if (res.status >= 400) throw this.#error(req, res);
    const body = res.status === 204 ? {} : res.json();
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
      typeof body?.error === "string"
        ? body.error
        : header !== undefined && header !== ""
          ? header
          : undefined;
    const field = typeof body?.field === "string" ? ` (field ${body.field})` : "";
    const said = this.#http.redactor.text(`${text ?? `HTTP ${String(res.status)}`}${field}`);
    const message = `vscale ${req.operation}: ${said}`;
    const details = { provider: "vscale", operation: req.operation };
    // Vscale answers 403 to any write made with a read-only token: say so, it is the usual cause.
    if (res.status === 403 && req.method !== "GET")
      return new UnauthorizedError(
        `${message}; the token in the Secret is read-only: create a full-access token in the Vscale panel`,
        { ...details, httpStatus: 403 },
      );
    return errorForStatus(res, message, details);
  }

  async list<T>(path: string, schema: z.ZodType<T>, operation: string): Promise<T[]> {
    const out = await this.call({ method: "GET", path, operation }, z.array(schema));
    return out?.body ?? [];
  }
}
