/**
 * Typed provider errors. Drivers translate every provider answer into one of these so the
 * reconciler decides retry vs. terminal from the class, never from provider-specific text.
 * `message` is always safe to show (secrets redacted by the HTTP layer before it gets here).
 */
export type ProviderErrorCode =
  | "ERR_PROVIDER_NOT_FOUND"
  | "ERR_PROVIDER_INVALID_REQUEST"
  | "ERR_PROVIDER_UNAUTHORIZED"
  | "ERR_PROVIDER_QUOTA_OR_BILLING"
  | "ERR_PROVIDER_RATE_LIMITED"
  | "ERR_PROVIDER_TRANSIENT"
  | "ERR_PROVIDER_UNSUPPORTED"
  | "ERR_PROVIDER_CREDENTIALS"
  | "ERR_PROVIDER_ENDPOINT_REFUSED"
  | "ERR_PROVIDER_LIMIT";

export interface ProviderErrorDetails {
  provider?: string;
  operation?: string;
  httpStatus?: number;
  /** The provider's own error code, when it has one. */
  providerCode?: string;
  cause?: unknown;
}

export abstract class ProviderError extends Error {
  abstract readonly code: ProviderErrorCode;
  /** Terminal errors need the user to change something; retrying the same call cannot help. */
  abstract readonly terminal: boolean;
  /** CamelCase reason for the Synced condition. */
  abstract readonly reason: string;
  readonly provider: string | undefined;
  readonly operation: string | undefined;
  readonly httpStatus: number | undefined;
  readonly providerCode: string | undefined;

  constructor(message: string, details: ProviderErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.provider = details.provider;
    this.operation = details.operation;
    this.httpStatus = details.httpStatus;
    this.providerCode = details.providerCode;
  }
}

export class NotFoundError extends ProviderError {
  override readonly name = "NotFoundError";
  readonly code = "ERR_PROVIDER_NOT_FOUND";
  readonly terminal = false;
  readonly reason = "NotFound";
}

/** The spec asks for something the provider refuses (unknown plan, bad image, downgrade …). */
export class InvalidRequestError extends ProviderError {
  override readonly name = "InvalidRequestError";
  readonly code = "ERR_PROVIDER_INVALID_REQUEST";
  readonly terminal = true;
  readonly reason: string;
  constructor(message: string, details: ProviderErrorDetails & { reason?: string } = {}) {
    super(message, details);
    this.reason = details.reason ?? "InvalidRequest";
  }
}

export class UnauthorizedError extends ProviderError {
  override readonly name = "UnauthorizedError";
  readonly code = "ERR_PROVIDER_UNAUTHORIZED";
  readonly terminal = true;
  readonly reason = "Unauthorized";
}

export class QuotaOrBillingError extends ProviderError {
  override readonly name = "QuotaOrBillingError";
  readonly code = "ERR_PROVIDER_QUOTA_OR_BILLING";
  readonly terminal = true;
  readonly reason = "QuotaOrBilling";
}

export class RateLimitedError extends ProviderError {
  override readonly name = "RateLimitedError";
  readonly code = "ERR_PROVIDER_RATE_LIMITED";
  readonly terminal = false;
  readonly reason = "RateLimited";
  /** How long the provider asked us to wait, when it said so. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, details: ProviderErrorDetails & { retryAfterMs?: number } = {}) {
    super(message, details);
    this.retryAfterMs = details.retryAfterMs;
  }
}

/**
 * 5xx, timeouts, dropped connections, malformed answers: worth retrying later. Says nothing
 * about whether the provider acted, so a create or delete that fails so is settled by a read.
 */
export class TransientError extends ProviderError {
  override readonly name: string = "TransientError";
  readonly code: "ERR_PROVIDER_TRANSIENT" | "ERR_PROVIDER_LIMIT" = "ERR_PROVIDER_TRANSIENT";
  readonly terminal = false;
  readonly reason: string = "ProviderUnavailable";
}

/** The driver does not support the action the spec needs (e.g. stop on multicloud). */
export class UnsupportedError extends ProviderError {
  override readonly name = "UnsupportedError";
  readonly code = "ERR_PROVIDER_UNSUPPORTED";
  readonly terminal = true;
  readonly reason = "Unsupported";
}

/**
 * The endpoint is not one credentials may be sent to: here, an allowed host name that resolved
 * to an internal address at connection time. Nothing was sent. The user (or the admin's
 * --allowed-endpoints) must change; a resync checks again.
 */
export class EndpointRefusedError extends ProviderError {
  override readonly name = "EndpointRefusedError";
  readonly code = "ERR_PROVIDER_ENDPOINT_REFUSED";
  readonly terminal = true;
  readonly reason = "EndpointNotAllowed";
}

/** The credentials Secret lacks a key or holds an unusable value. Names the Secret and key. */
export class CredentialsError extends ProviderError {
  override readonly name = "CredentialsError";
  readonly code = "ERR_PROVIDER_CREDENTIALS";
  readonly terminal = true;
  readonly reason = "InvalidCredentials";
}

/**
 * An answer past the operator's bounds: a body over the size cap, a request past its total
 * deadline, a list past the page cap. Retried with backoff (the provider may recover), and
 * the reason says which bound and its value. A TransientError: a create cut off by the
 * deadline or abandoned for its size may have been carried out, so it is as ambiguous as a
 * timeout (the create-pending marker stays, drivers settle it with a read).
 */
export class ProviderLimitError extends TransientError {
  override readonly name = "ProviderLimitError";
  override readonly code = "ERR_PROVIDER_LIMIT";
  override readonly reason: string;
  constructor(
    message: string,
    details: ProviderErrorDetails & { reason: "ResponseTooLarge" | "RequestTooSlow" | "TooManyPages" },
  ) {
    super(message, details);
    this.reason = details.reason;
  }
}

/**
 * The operator's own per-account budget said "not now": the request was refused before it
 * was sent (it would have waited in the account's rate limiter, or every slot was busy). A
 * TransientError so a driver treats it like any other call that got no answer; the reconciler
 * recognises it and requeues the object for `retryAfterMs` without an error or a backoff.
 */
export class ThrottledError extends TransientError {
  override readonly name = "ThrottledError";
  override readonly reason = "Throttled";
  readonly throttled = true;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, details: ProviderErrorDetails & { retryAfterMs?: number | undefined } = {}) {
    super(message, details);
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The ThrottledError in `err` or its causes (a driver may wrap what the HTTP layer threw). */
/**
 * The call's result, or undefined where the provider says the thing does not exist
 * (NotFoundError): a read of something gone, a deletion of something already deleted. Every
 * other failure stands.
 */
export async function absentIfNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

export function findThrottled(err: unknown): ThrottledError | undefined {
  for (let e = err, depth = 0; typeof e === "object" && e !== null && depth < 6; depth++) {
    if (e instanceof ThrottledError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function isProviderError(err: unknown): err is ProviderError {
  return err instanceof ProviderError;
}
