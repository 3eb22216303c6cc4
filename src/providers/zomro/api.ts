import { z } from "zod";
import type { HttpClient } from "../http/client.ts";
import type { Redactor } from "../http/redact.ts";
import { errorForStatus } from "../http/answer.ts";
import {
  InvalidRequestError,
  NotFoundError,
  QuotaOrBillingError,
  TransientError,
  UnauthorizedError,
  type ProviderError,
} from "../errors.ts";

/** BILLmanager wraps scalars as `{"$": "value"}`. */
const Scalar = z.union([z.looseObject({ $: z.union([z.string(), z.number()]) }), z.string(), z.number()]);
export type Row = Record<string, unknown>;

const DocSchema = z.looseObject({
  doc: z.looseObject({
    error: z
      .looseObject({
        $type: z.string().optional(),
        $object: z.string().optional(),
        msg: Scalar.optional(),
      })
      .optional(),
  }),
});

export function scalar(v: unknown): string | undefined {
  const parsed = Scalar.safeParse(v);
  if (!parsed.success) return undefined;
  const d = parsed.data;
  return typeof d === "object" ? String(d.$) : String(d);
}

/** `elem` is an array, a single object for one row, or absent for none. */
export function elems(doc: Row): Row[] {
  const e = doc.elem;
  if (e === undefined || e === null) return [];
  if (Array.isArray(e)) return e.filter((x): x is Row => typeof x === "object" && x !== null);
  return typeof e === "object" ? [e as Row] : [];
}

export interface CallOptions {
  operation: string;
  /** A form that changes something: sent with `sok=ok` (without it BILLmanager only previews). */
  submit?: boolean;
  /** Safe to repeat after an ambiguous failure (reads, converging actions); never an order. */
  idempotent: boolean;
}

/**
 * BILLmanager client: one endpoint, form POSTs with `func` and `out=json`, answers always
 * HTTP 200 with errors in `doc.error`. Authenticates with a session (`func=auth`) rather than
 * `authinfo`, so the password crosses the wire once an hour instead of with every call; the
 * session is renewed once when BILLmanager says it expired.
 */
export class ZomroApi {
  readonly #http: HttpClient;
  readonly #username: string;
  readonly #password: string;
  #session: Promise<string> | undefined;
  #redactor: Redactor;

  constructor(http: HttpClient, username: string, password: string) {
    this.#http = http;
    this.#username = username;
    this.#password = password;
    this.#redactor = http.redactor;
  }

  async #login(): Promise<string> {
    const doc = await this.#send(
      "auth",
      { username: this.#username, password: this.#password },
      {
        operation: "auth",
        idempotent: true,
      },
    );
    const auth = doc.auth as { $id?: unknown; $?: unknown } | undefined;
    const id = typeof auth?.$id === "string" ? auth.$id : scalar(auth);
    if (id === undefined || id === "")
      throw new TransientError("zomro auth: no session id in the answer", {
        provider: "zomro",
        operation: "auth",
      });
    // The session id is a credential from now on: keep it out of logs and messages.
    this.#redactor = this.#redactor.with([id]);
    return id;
  }

  #sessionId(): Promise<string> {
    if (!this.#session) {
      const attempt = this.#login();
      this.#session = attempt;
      attempt.catch(() => {
        if (this.#session === attempt) this.#session = undefined;
      });
    }
    return this.#session;
  }

  async call(func: string, fields: Record<string, string>, opts: CallOptions): Promise<Row> {
    for (let attempt = 0; ; attempt++) {
      const pending = this.#sessionId();
      const session = await pending;
      try {
        return await this.#send(
          func,
          { ...fields, auth: session, ...(opts.submit ? { sok: "ok" } : {}) },
          opts,
        );
      } catch (err) {
        const expired = err instanceof UnauthorizedError && err.providerCode === "auth";
        if (!expired || attempt > 0) throw err;
        if (this.#session === pending) this.#session = undefined;
      }
    }
  }

  async #send(func: string, fields: Record<string, string>, opts: CallOptions): Promise<Row> {
    const res = await this.#http.request({
      method: "POST",
      path: "/",
      form: [["func", func], ["out", "json"], ...Object.entries(fields)],
      operation: opts.operation,
      idempotent: opts.idempotent,
    });
    const where = { provider: "zomro", operation: opts.operation };
    if (res.status !== 200) {
      const text = this.#redactor.text(
        res.text
          .replace(/<[^>]*>/g, " ")
          .trim()
          .slice(0, 200),
      );
      throw errorForStatus(res, `zomro ${opts.operation}: ${text || `HTTP ${String(res.status)}`}`, where);
    }
    const parsed = DocSchema.safeParse(res.json());
    if (!parsed.success)
      throw new TransientError(`zomro ${opts.operation}: the answer is not a BILLmanager JSON document`, {
        ...where,
        httpStatus: res.status,
      });
    const { doc } = parsed.data;
    if (doc.error)
      throw this.#error(doc.error.$type ?? "", scalar(doc.error.msg) ?? "", doc.error.$object, opts);
    return doc;
  }

  #error(type: string, msg: string, object: string | undefined, opts: CallOptions): ProviderError {
    const field = object ? ` (${object})` : "";
    const message = `zomro ${opts.operation}: ${this.#redactor.text(msg)}${field}`;
    const details = { provider: "zomro", operation: opts.operation, providerCode: type };
    switch (type) {
      case "auth":
      case "access":
        return new UnauthorizedError(message, details);
      case "missing":
        return new NotFoundError(message, details);
      case "value":
      case "exists":
      case "empty":
      case "format":
        return new InvalidRequestError(message, details);
      case "balance":
      case "payment":
      case "account":
      case "limit":
        return new QuotaOrBillingError(message, details);
      default:
        // "status", "busy", "lock" and anything unknown: the service may accept it later.
        return new TransientError(message, details);
    }
  }
}
