import { z } from "zod";
import type { HttpClient, HttpRequest, HttpResponse } from "../http/client.ts";
import { errorForStatus, parseAnswer } from "../http/answer.ts";
import {
  InvalidRequestError,
  NotFoundError,
  ProviderError,
  TransientError,
  UnauthorizedError,
} from "../errors.ts";

/**
 * jupiter's answer to every call: `{code, msg, content, ext}`. `content` is the call's own
 * answer, parsed with the call's schema once `code` says it is one (it is null on a failure);
 * `ext` is not read.
 */
const EnvelopeSchema = z.looseObject({
  code: z.number(),
  msg: z.string().nullable().optional(),
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
  Cpu: z.number().optional(),
  Ram: z.number().optional(),
  PrivateIpAddress: z.string().optional(),
  PublicIpAddress: z.string().optional(),
  CreateTime: z.string().optional(),
  Cluster: z
    .looseObject({ Id: z.number(), Name: z.string(), Zone: ZoneSchema.nullable().optional() })
    .nullable()
    .optional(),
});
export type Instance = z.infer<typeof InstanceSchema>;

/** The driver call's signal (CallContext), passed to every request made for that call. */
export type Signal = AbortSignal | undefined;

/** Reason of the error for a path the endpoint does not route (a 404 without jupiter's envelope). */
export const UNKNOWN_ROUTE = "UnknownRoute";

/**
 * Instance ids come from the backend cloud ("i-2ze1v31lnkfgubznmmtz", an OpenStack UUID …).
 * Nothing that could address another resource passes: no "/", no "%", and no "," — jupiter's
 * source splits `:instanceIds` on commas, so "a,b" would delete two instances.
 */
const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CLUSTER_ID = /^[0-9]{1,18}$/;

function refuseId(kind: string, id: string, operation: string): InvalidRequestError {
  return new InvalidRequestError(
    `multicloud ${operation}: ${JSON.stringify(id.slice(0, 80))} is not a valid ${kind} id`,
    { provider: "multicloud", operation, reason: "InvalidID" },
  );
}

/** The instance id, path-escaped, after checking its format (nothing is sent otherwise). */
export function instanceSegment(id: string, operation: string): string {
  if (!INSTANCE_ID.test(id)) throw refuseId("instance", id, operation);
  return encodeURIComponent(id);
}

/** A remote template id (an integer), after checking its format. */
export function clusterSegment(id: string, operation: string): string {
  if (!CLUSTER_ID.test(id)) throw refuseId("template", id, operation);
  return id;
}

/** A route the document and the source code spell differently. */
export interface RouteChoice {
  readonly spellings: readonly { method: "GET" | "POST"; path: (arg: string) => string }[];
  /**
   * Index of the spelling that answered last. A property of the endpoint (the driver is
   * per endpoint and account), never of one object.
   */
  working: number;
}

/**
 * Thin client of the jupiter API: reads the envelope's `code` whatever the HTTP status says
 * (the document shows only bodies) and maps the codes onto typed errors. Every provider text
 * it puts in an error goes through the HTTP client's redactor.
 */
export class MulticloudApi {
  readonly #http: HttpClient;
  constructor(http: HttpClient) {
    this.#http = http;
  }

  /**
   * One request. A cancelled call (its signal aborted) sends nothing more: every request of a
   * driver call goes through here with the call's signal, checked before it is sent.
   */
  async call<T>(req: HttpRequest, schema: z.ZodType<T>): Promise<T> {
    const { content, where } = await this.#content(req);
    return parseAnswer(schema, content, where);
  }

  /** A call whose answer is not read (a deletion: the next read tells the outcome). */
  async send(req: HttpRequest): Promise<void> {
    await this.#content(req);
  }

  /** The answer of a successful call, unparsed; a failure throws. */
  async #content(
    req: HttpRequest,
  ): Promise<{ content: unknown; where: { provider: string; operation: string; httpStatus: number } }> {
    if (req.signal?.aborted) throw cancelled(req.operation, req.signal);
    const res = await this.#http.request(req);
    const raw = res.json();
    const where = { provider: "multicloud", operation: req.operation, httpStatus: res.status };
    const envelope = EnvelopeSchema.safeParse(raw);
    if (!envelope.success) {
      // No envelope: a router, a proxy or an auth layer answered, not jupiter.
      const text = this.#http.redactor.text(res.text.trim().slice(0, 200) || `HTTP ${String(res.status)}`);
      if (res.status === 404)
        throw new InvalidRequestError(
          `multicloud ${req.operation}: the endpoint has no ${req.method} ${routeOf(req.path)} (HTTP 404: ${text}); check spec.provider.endpoint`,
          { ...where, reason: UNKNOWN_ROUTE },
        );
      if (res.status >= 400) throw errorForStatus(res, `multicloud ${req.operation}: ${text}`, where);
      return { content: raw, where };
    }
    const { code, msg, content } = envelope.data;
    const text = msg ?? "";
    // code 0 with a message and no content is a failure (the log reads' documented error,
    // the source's "over credit limit"): never read it as an empty success.
    if (code === 0 && (text === "" || content !== null)) return { content, where };
    throw this.#error(code, text, req.operation, res);
  }

  #error(code: number, msg: string, operation: string, res: HttpResponse): ProviderError {
    const message = `multicloud ${operation}: ${this.#http.redactor.text(msg.slice(0, 300))} (code ${String(code)})`;
    const details = { provider: "multicloud", operation, httpStatus: res.status, providerCode: String(code) };
    if (res.status === 401 || res.status === 403) return new UnauthorizedError(message, details);
    if (res.status === 429) return errorForStatus(res, message, details);
    switch (code) {
      case 0:
        return res.status >= 400 && res.status < 500
          ? new InvalidRequestError(message, { ...details, reason: "Refused" })
          : new TransientError(message, details);
      case 10999:
        // The ORM's words for a missing row; any other text may be the service failing.
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
   * Calls the spelling that worked last; when the endpoint does not route it (a 404 without
   * an envelope) tries the other and remembers it. An envelope answer is never retried elsewhere.
   */
  async routed<T>(
    route: RouteChoice,
    arg: string,
    operation: string,
    schema: z.ZodType<T>,
    signal: Signal,
  ): Promise<T> {
    let last: unknown;
    for (let n = 0; n < route.spellings.length; n++) {
      const index = (route.working + n) % route.spellings.length;
      const spelling = route.spellings[index];
      if (!spelling) continue;
      try {
        const out = await this.call(
          { method: spelling.method, path: spelling.path(arg), operation, idempotent: true, signal },
          schema,
        );
        route.working = index;
        return out;
      } catch (err) {
        if (!isUnknownRoute(err)) throw err;
        last = err;
      }
    }
    throw last instanceof Error ? last : new TransientError(`multicloud ${operation}: no route answered`);
  }
}

/** A call whose reconcile was cancelled: transient, it is the next reconcile's to redo. */
function cancelled(operation: string, signal: AbortSignal): TransientError {
  return new TransientError(`multicloud ${operation}: cancelled before it was sent`, {
    provider: "multicloud",
    operation,
    cause: signal.reason,
  });
}

export function isUnknownRoute(err: unknown): boolean {
  return err instanceof InvalidRequestError && err.reason === UNKNOWN_ROUTE;
}

/**
 * A failed read that does not say whether the thing exists: the document's 10999 (its only
 * answer for a failed read, whatever the cause), a 5xx, a timeout, a body that is not one
 * envelope (jupiter's source writes a second envelope after some errors). Worth settling with
 * another documented read before retrying blindly.
 */
export function isAmbiguous(err: unknown): boolean {
  return err instanceof TransientError;
}

/** A path with its ids replaced, for a message that names a route, not a tenant's resource. */
function routeOf(path: string): string {
  return path.replace(/\/[^/]*[0-9][^/]*(?=\/|$)/g, "/:id");
}
