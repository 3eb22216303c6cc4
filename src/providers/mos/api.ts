import { XMLParser } from "fast-xml-parser";
import { z } from "zod";
import type { HttpClient, HttpResponse, PreparedRequest } from "../http/client.ts";
import { errorForStatus, parseAnswer } from "../http/answer.ts";
import type { CallContext } from "../driver.ts";
import {
  InvalidRequestError,
  NotFoundError,
  QuotaOrBillingError,
  TransientError,
  UnauthorizedError,
  type ProviderError,
} from "../errors.ts";
import { canonicalQuery, rfc3986, signature, stringToSign, type SignatureMethod } from "./signer.ts";

/** Elements that are lists in MOS answers: XML gives one child as an object, so force arrays. */
const LIST_ELEMENTS = new Set(["Instance", "Template", "InstanceType", "KeyPair", "InstanceVolume"]);
const xml = new XMLParser({
  ignoreAttributes: true,
  // Values stay strings: zod coerces numbers, so JSON and XML parse alike.
  parseTagValue: false,
  isArray: (name) => LIST_ELEMENTS.has(name),
});

const ErrorSchema = z.looseObject({
  ErrorResponse: z.looseObject({
    Error: z.looseObject({ message: z.coerce.string().optional(), code: z.coerce.string().optional() }),
  }),
});

/**
 * Request parameters a provider message may echo that carry credentials or a signature: the
 * Redactor scrubs the known secret values, this scrubs what is only recognisable by its name.
 */
const ECHOED_SECRETS =
  /\b(Signature|AWSAccessKeyId|SecretAccessKey|SecretKey|AccessKey)(\s*[=:]\s*"?)[^\s&"',;<]+/gi;

/**
 * Whether the provider refused a request naming an instance with a 4xx that may mean "no such
 * instance": the document gives no status for it (404 is not promised; 400 is as likely), so the
 * caller asks DescribeInstances before concluding anything. Our own validation (no httpStatus)
 * and authentication, billing or rate-limit refusals are not this.
 */
export function refusedByProvider(err: unknown): boolean {
  return (err instanceof NotFoundError || err instanceof InvalidRequestError) && err.httpStatus !== undefined;
}

/**
 * The MOS API as one driver call uses it: every request it sends carries that call's signal,
 * and every list it pages stops at the page cap. Helpers get this, never MosApi itself, so none
 * can send a request the caller could not cancel.
 */
export interface MosCalls {
  readonly signal: AbortSignal | undefined;
  /** Most pages one list may take (DriverContext.maxPages). */
  readonly maxPages: number;
  /**
   * Calls an action and returns the body under `<Action>Response`, parsed with `schema`.
   * `idempotent` marks reads and converging actions; charging actions never repeat blindly.
   */
  call<T>(
    action: string,
    params: Record<string, string | undefined>,
    schema: z.ZodType<T>,
    idempotent: boolean,
  ): Promise<T>;
}

export interface MosCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  signatureMethod: SignatureMethod;
}

/** Parses an answer in whichever format it came: JSON, or XML (errors may be XML whatever was asked). */
export function parseBody(res: HttpResponse): unknown {
  const type = res.headers["content-type"] ?? "";
  const text = res.text.trim();
  if (type.includes("json") || text.startsWith("{")) return res.json();
  if (text.startsWith("<")) {
    try {
      return xml.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The MOS Query API: every call is `Action=…` plus the AWS Signature Version 2 parameters,
 * POSTed form-encoded and signed per attempt (a retry gets a fresh Timestamp and signature).
 */
export class MosApi {
  readonly #http: HttpClient;
  readonly #creds: MosCredentials;
  readonly #now: () => Date;
  readonly #maxPages: number;

  constructor(http: HttpClient, creds: MosCredentials, maxPages: number, now: () => Date = () => new Date()) {
    this.#http = http;
    this.#creds = creds;
    this.#maxPages = maxPages;
    this.#now = now;
  }

  /** The API for one driver call, bound to its signal. */
  scope(ctx: CallContext | undefined): MosCalls {
    const signal = ctx?.signal;
    return {
      signal,
      maxPages: this.#maxPages,
      call: (action, params, schema, idempotent) => this.#call(action, params, schema, idempotent, signal),
    };
  }

  #sign(
    action: string,
    params: readonly (readonly [string, string])[],
  ): (req: PreparedRequest) => PreparedRequest {
    return (req) => {
      const all: [string, string][] = [
        ["Action", action],
        ...params.map(([k, v]) => [k, v] as [string, string]),
        ["AWSAccessKeyId", this.#creds.accessKeyId],
        ["SignatureVersion", "2"],
        ["SignatureMethod", this.#creds.signatureMethod],
        ["Timestamp", this.#now().toISOString()],
        ["Format", "json"],
      ];
      const sig = signature(
        this.#creds.secretAccessKey,
        this.#creds.signatureMethod,
        stringToSign(req.method, req.url, all),
      );
      return {
        ...req,
        headers: { ...req.headers, "content-type": "application/x-www-form-urlencoded" },
        body: `${canonicalQuery(all)}&Signature=${rfc3986(sig)}`,
      };
    };
  }

  async #call<T>(
    action: string,
    params: Record<string, string | undefined>,
    schema: z.ZodType<T>,
    idempotent: boolean,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    // Checked here, not left to the transport: a cancelled call must not even open a connection.
    if (signal?.aborted)
      throw new TransientError(`mos ${action}: not sent, the reconcile was cancelled`, {
        provider: "mos",
        operation: action,
        cause: signal.reason,
      });
    const list = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined);
    const res = await this.#http.request({
      method: "POST",
      path: "/",
      body: "",
      operation: action,
      idempotent,
      sign: this.#sign(action, list),
      signal,
    });
    const body = parseBody(res);
    if (res.status >= 400) throw this.#error(action, res, body);
    const where = { provider: "mos", operation: action, httpStatus: res.status };
    // Every answer is wrapped in `<Action>Response`: one schema for both, so a mismatch names its path.
    const key = `${action}Response`;
    const wrapped = parseAnswer(z.looseObject({ [key]: schema }), body, where);
    return wrapped[key] as T;
  }

  /** Text safe for a log line, an error, an Event or a status: known secrets and echoed keys removed. */
  redact(text: string): string {
    return this.#http.redactor.text(text).replace(ECHOED_SECRETS, "$1$2[REDACTED]");
  }

  #error(action: string, res: HttpResponse, body: unknown): ProviderError {
    const parsed = ErrorSchema.safeParse(body);
    const said = parsed.success
      ? (parsed.data.ErrorResponse.Error.message ?? "")
      : res.text
          .replace(/<[^>]*>/g, " ")
          .trim()
          .slice(0, 200);
    const code = parsed.success ? parsed.data.ErrorResponse.Error.code : undefined;
    const message = `mos ${action}: ${this.redact(said || `HTTP ${String(res.status)}`)}`;
    const details = {
      provider: "mos",
      operation: action,
      ...(code === undefined ? {} : { providerCode: code }),
    };
    // 406 is MOS's "No enough balance": the user must top up, a retry cannot help.
    if (res.status === 406) return new QuotaOrBillingError(message, { ...details, httpStatus: 406 });
    // Which 4xx a stale Timestamp gets is not documented (AWS answers 400 RequestExpired).
    if ([400, 401, 403].includes(res.status) && /timestamp|expired/i.test(said))
      return new UnauthorizedError(`${message} (is this machine's clock right?)`, {
        ...details,
        httpStatus: res.status,
      });
    if (res.status === 409) return new TransientError(message, { ...details, httpStatus: 409 });
    return errorForStatus(res, message, details);
  }
}
