import { z } from "zod";
import type { HttpClient, HttpRequest, HttpResponse } from "../http/client.ts";
import { errorForStatus, parseAnswer } from "../http/answer.ts";
import {
  InvalidRequestError,
  NotFoundError,
  TransientError,
  UnauthorizedError,
  type ProviderError,
} from "../errors.ts";

/** jupiter's answer to every call. */
const EnvelopeSchema = z.looseObject({
  code: z.number(),
  msg: z.string().nullable().optional(),
  content: z.unknown(),
  ext: z.unknown().optional(),
});

const ZoneSchema = z.looseObject({ RegionName: z.string(), ZoneName: z.string() });
export const ClusterSchema = z.looseObject({
  Id: z.number(),
  Name: z.string(),
  Provider: z.string(),
  InstanceType: z.string(),
  ImageId: z.string(),
  Zone: ZoneSchema.nullable().optional(),
});
export type Cluster = z.infer<typeof ClusterSchema>;

export const InstanceSchema = z.looseObject({
  InstanceId: z.string(),
  Status: z.number(),
  Provider: z.string().optional(),
  InstanceType: z.string().optional(),
  ImageId: z.string().optional(),
  RegionId: z.string().optional(),
  PrivateIpAddress: z.string().optional(),
  PublicIpAddress: z.string().optional(),
  CreateTime: z.string().optional(),
  Cluster: z
    .looseObject({ Id: z.number(), Name: z.string(), Zone: ZoneSchema.nullable().optional() })
    .optional(),
});
export type Instance = z.infer<typeof InstanceSchema>;

export const StatusRowSchema = z.looseObject({
  instance_id: z.string(),
  status: z.number(),
  ip_address: z.string().optional(),
});

/** A route the document and the source code spell differently. */
export interface RouteChoice {
  readonly spellings: readonly { method: "GET" | "POST"; path: (arg: string) => string }[];
  /** Index of the spelling that answered last; remembered per driver. */
  working: number;
}

/**
 * Thin client of the jupiter API: reads the envelope's `code` whatever the HTTP status says
 * (the document shows only bodies) and maps the codes onto typed errors.
 */
export class MulticloudApi {
  readonly #http: HttpClient;
  constructor(http: HttpClient) {
    this.#http = http;
  }

  async call<T>(req: HttpRequest, schema: z.ZodType<T>): Promise<T> {
    const res = await this.#http.request(req);
    const raw = res.json();
    const where = { provider: "multicloud", operation: req.operation, httpStatus: res.status };
    const envelope = EnvelopeSchema.safeParse(raw);
    if (!envelope.success) {
      // No envelope: a proxy, a router 404 or an auth layer answered, not jupiter.
      const text = this.#http.redactor.text(res.text.trim().slice(0, 200) || `HTTP ${String(res.status)}`);
      if (res.status >= 400) throw errorForStatus(res, `multicloud ${req.operation}: ${text}`, where);
      return parseAnswer(schema, raw, where);
    }
    const { code, msg, content } = envelope.data;
    if (code === 0) return parseAnswer(schema, content, where);
    throw this.#error(code, msg ?? "", req.operation, res);
  }

  #error(code: number, msg: string, operation: string, res: HttpResponse): ProviderError {
    const message = `multicloud ${operation}: ${this.#http.redactor.text(msg)} (code ${String(code)})`;
    const details = { provider: "multicloud", operation, httpStatus: res.status, providerCode: String(code) };
    if (res.status === 401 || res.status === 403) return new UnauthorizedError(message, details);
    if (res.status === 429) return errorForStatus(res, message, details);
    switch (code) {
      case 10999:
        // The ORM's words for a missing row; anything else is the service failing.
        return /no row found/i.test(msg)
          ? new NotFoundError(message, details)
          : new TransientError(message, details);
      case 11996:
        return new InvalidRequestError(message, { ...details, reason: "OverLimit" });
      case 12996:
        return new InvalidRequestError(message, details);
      case 12997:
        return new InvalidRequestError(message, { ...details, reason: "MissingParameter" });
      default:
        return new TransientError(message, details);
    }
  }

  /**
   * Calls the spelling that worked last; on a router 404 (no envelope) tries the next one and
   * remembers it. An envelope 404 is a real answer and is not retried elsewhere.
   */
  async routed<T>(
    route: RouteChoice,
    arg: string,
    operation: string,
    schema: z.ZodType<T>,
    extra: Partial<HttpRequest> = {},
  ): Promise<T> {
    let last: unknown;
    for (let n = 0; n < route.spellings.length; n++) {
      const index = (route.working + n) % route.spellings.length;
      const spelling = route.spellings[index];
      if (!spelling) continue;
      try {
        const out = await this.call(
          { ...extra, method: spelling.method, path: spelling.path(arg), operation, idempotent: true },
          schema,
        );
        route.working = index;
        return out;
      } catch (err) {
        if (!(err instanceof NotFoundError) || err.providerCode !== undefined) throw err;
        last = err;
      }
    }
    throw last instanceof Error ? last : new TransientError(`multicloud ${operation}: no route answered`);
  }
}
