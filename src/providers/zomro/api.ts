import { z } from "zod";
import type { HttpClient } from "../http/client.ts";
import { REDACTED, type Redactor } from "../http/redact.ts";
import { errorForStatus } from "../http/answer.ts";
import { cancelled, SharedValue } from "./shared.ts";
import {
  InvalidRequestError,
  NotFoundError,
  QuotaOrBillingError,
  TransientError,
  ProviderError,
  UnauthorizedError,
  type ProviderErrorDetails,
} from "../errors.ts";

/** BILLmanager wraps scalars as `{"$": "value"}`. */
const Scalar = z.union([z.looseObject({ $: z.union([z.string(), z.number()]) }), z.string(), z.number()]);
export type Row = Record<string, unknown>;

const ErrorBody = z.looseObject({
  $type: z.string().optional(),
  $object: z.string().optional(),
  msg: Scalar.optional(),
});
type ErrorBody = z.infer<typeof ErrorBody>;
const DocSchema = z.looseObject({ doc: z.looseObject({ error: ErrorBody.optional() }) });

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

/**
 * The function a call named does not exist at this BILLmanager (`$object: func`): the API
 * cannot do this (or providerOptions.functions names the wrong function). Terminal.
 */
export class UnknownFunctionError extends ProviderError {
  override readonly name = "UnknownFunctionError";
  readonly code = "ERR_PROVIDER_UNSUPPORTED";
  readonly terminal = true;
  readonly reason = "UnknownFunction";
  readonly func: string;
  constructor(func: string, message: string, details: ProviderErrorDetails) {
    super(message, details);
    this.func = func;
  }
}

/** A BILLmanager session and the HTTP client whose redactor knows its id. */
interface Session {
  id: string;
  http: HttpClient;
}

export interface CallOptions {
  operation: string;
  /** A form that changes something: sent with `sok=ok` (without it BILLmanager only previews). */
  submit?: boolean;
  /** Safe to repeat after an ambiguous failure (reads, converging actions); never an order. */
  idempotent: boolean;
  /**
   * The driver call's signal (CallContext), on every request it leads to, the login included:
   * once it is aborted nothing more is sent. Required, so no call site can forget it.
   */
  signal: AbortSignal | undefined;
}

/**
 * Spellings of "no such object": the document shows none, BILLmanager uses `missing`, and
 * installations answer an `elid` they do not know with a refusal of that field's value or an
 * access error. On a call that names a service, each means the service is not there.
 */
const NOT_FOUND_TYPES = new Set(["missing", "notfound", "not_found", "noobject"]);
const ELID_REFUSALS = new Set([...NOT_FOUND_TYPES, "value", "format", "empty", "access"]);
/** Request fields whose echo in an error text would carry a credential or the account's login. */
const ECHOED_SECRET =
  /\b(auth|authinfo|password|passwd|username|token|key|signature)=("[^"]*"|[^&\s"',;]*)/gi;
/** Session ids (BILLmanager: 24 hex digits) and digests, including expired ones no redactor knows. */
const LONG_HEX = /\b[0-9a-f]{20,}\b/gi;

/**
 * BILLmanager client: one endpoint, form POSTs with `func` and `out=json`, answers always
 * HTTP 200 with errors in `doc.error`. Authenticates with a session (`func=auth`) rather than
 * `authinfo`, so the password crosses the wire once an hour instead of with every call; the
 * session is renewed once when BILLmanager says it expired. Each session gets its own HTTP
 * client whose redactor knows the session id, so it is a secret wherever text is scrubbed.
 *
 * Not the HTTP client's auth source: that one sets headers and renews on an HTTP 401, while
 * BILLmanager takes the session as a form field (`auth=`) and says it expired in an HTTP 200
 * body (`$type: auth`).
 */
export class ZomroApi {
  /** An HTTP client for the account whose redactor also knows `extraSecrets`. */
  readonly #client: (extraSecrets: readonly string[]) => HttpClient;
  readonly #login: HttpClient;
  readonly #username: string;
  readonly #password: string;
  /** Kept until BILLmanager says it expired; one login shared by the calls that need it. */
  readonly #session = new SharedValue<Session>(Number.POSITIVE_INFINITY);

  constructor(client: (extraSecrets: readonly string[]) => HttpClient, username: string, password: string) {
    this.#client = client;
    this.#login = client([]);
    this.#username = username;
    this.#password = password;
  }

  async #open(signal: AbortSignal): Promise<Session> {
    const doc = await this.#send(
      this.#login,
      "auth",
      { username: this.#username, password: this.#password },
      { operation: "auth", idempotent: true, signal },
    );
    const auth = doc.auth as { $id?: unknown } | undefined;
    const id = typeof auth?.$id === "string" ? auth.$id : scalar(auth);
    if (id === undefined || id === "")
      throw new TransientError("zomro auth: no session id in the answer", {
        provider: "zomro",
        operation: "auth",
      });
    return { id, http: this.#client([id]) };
  }

  async call(func: string, fields: Record<string, string>, opts: CallOptions): Promise<Row> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.#session.get(opts.signal, opts.operation, (signal) => this.#open(signal));
      try {
        return await this.#send(
          session.http,
          func,
          { ...fields, auth: session.id, ...(opts.submit ? { sok: "ok" } : {}) },
          opts,
        );
      } catch (err) {
        const expired = err instanceof UnauthorizedError && err.providerCode === "auth";
        if (!expired || attempt > 0) throw err;
        this.#session.forget(session);
      }
    }
  }

  async #send(
    http: HttpClient,
    func: string,
    fields: Record<string, string>,
    opts: CallOptions,
  ): Promise<Row> {
    // The transport would abort an aborted request too, but only after the limiter let it
    // through: here nothing at all leaves.
    if (opts.signal?.aborted) throw cancelled(opts.operation, opts.signal);
    const res = await http.request({
      method: "POST",
      path: "/",
      form: [["func", func], ["out", "json"], ...Object.entries(fields)],
      operation: opts.operation,
      idempotent: opts.idempotent,
      signal: opts.signal,
    });
    const where = { provider: "zomro", operation: opts.operation };
    if (res.status !== 200) {
      const text = scrub(http.redactor, res.text.replace(/<[^>]*>/g, " ").trim(), 200);
      throw errorForStatus(res, `zomro ${opts.operation}: ${text || `HTTP ${String(res.status)}`}`, where);
    }
    const parsed = DocSchema.safeParse(res.json());
    if (!parsed.success)
      throw new TransientError(`zomro ${opts.operation}: the answer is not a BILLmanager JSON document`, {
        ...where,
        httpStatus: res.status,
      });
    const { doc } = parsed.data;
    if (doc.error) throw errorFor(doc.error, { func, names: fields.elid !== undefined }, opts, http.redactor);
    return doc;
  }
}

/** Every field of a BILLmanager error body that reaches a message passes through here. */
function scrub(redactor: Redactor, text: string, max: number): string {
  const clean = redactor
    .text(text)
    .replace(ECHOED_SECRET, (_m, name: string) => `${name}=${REDACTED}`)
    .replace(LONG_HEX, REDACTED);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function errorFor(
  body: ErrorBody,
  call: { func: string; names: boolean },
  opts: CallOptions,
  redactor: Redactor,
): ProviderError {
  const type = body.$type ?? "";
  const object = body.$object ?? "";
  const msg = scrub(redactor, scalar(body.msg) ?? "", 300);
  const field = object === "" ? "" : ` (${scrub(redactor, object, 100)})`;
  const message = `zomro ${opts.operation}: ${msg}${field}`;
  const details = {
    provider: "zomro",
    operation: opts.operation,
    providerCode: /^[a-z_]{1,32}$/i.test(type) ? type : "unknown",
  };
  if (object === "func")
    return new UnknownFunctionError(
      call.func,
      `zomro ${opts.operation}: this BILLmanager has no function "${call.func}" (${msg}); name the right one in providerOptions.functions`,
      details,
    );
  if (call.names && (NOT_FOUND_TYPES.has(type) || (object === "elid" && ELID_REFUSALS.has(type))))
    return new NotFoundError(message, details);
  switch (type) {
    case "auth":
    case "access":
      return new UnauthorizedError(message, details);
    case "missing":
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
