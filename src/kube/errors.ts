import { parseRetryAfter } from "../util/backoff.ts";
import type { KubeStatus } from "./core-types.ts";

export type { KubeStatus } from "./core-types.ts";

/**
 * Errors of the Kubernetes API, one class per answer a caller decides on. Built from the
 * `Status` object the API server returns, so the message is the server's own.
 */
export type KubeErrorCode =
  | "ERR_KUBE_NOT_FOUND"
  | "ERR_KUBE_CONFLICT"
  | "ERR_KUBE_ALREADY_EXISTS"
  | "ERR_KUBE_INVALID"
  | "ERR_KUBE_GONE"
  | "ERR_KUBE_TOO_MANY_REQUESTS"
  | "ERR_KUBE_UNAUTHORIZED"
  | "ERR_KUBE_FORBIDDEN"
  | "ERR_KUBE_BAD_REQUEST"
  | "ERR_KUBE_SERVER"
  | "ERR_KUBE_CONNECTION";

export abstract class KubeApiError extends Error {
  abstract readonly code: KubeErrorCode;
  readonly httpStatus: number;
  readonly reason: string | undefined;
  readonly status: KubeStatus;

  constructor(httpStatus: number, status: KubeStatus, fallback: string, options?: ErrorOptions) {
    super(status.message ?? fallback, options);
    this.httpStatus = httpStatus;
    this.reason = status.reason;
    this.status = status;
  }
}

export class NotFoundError extends KubeApiError {
  override readonly name = "NotFoundError";
  readonly code = "ERR_KUBE_NOT_FOUND";
}

/** The object changed since it was read (stale resourceVersion): re-read and try again. */
export class ConflictError extends KubeApiError {
  override readonly name = "ConflictError";
  readonly code = "ERR_KUBE_CONFLICT";
}

export class AlreadyExistsError extends KubeApiError {
  override readonly name = "AlreadyExistsError";
  readonly code = "ERR_KUBE_ALREADY_EXISTS";
}

/** 422: the object fails validation; `causes` name the fields. */
export class InvalidError extends KubeApiError {
  override readonly name = "InvalidError";
  readonly code = "ERR_KUBE_INVALID";
  get causes(): NonNullable<NonNullable<KubeStatus["details"]>["causes"]> {
    return this.status.details?.causes ?? [];
  }
}

/** 410: the requested resourceVersion is older than the server's history; relist. */
export class GoneError extends KubeApiError {
  override readonly name = "GoneError";
  readonly code = "ERR_KUBE_GONE";
}

export class TooManyRequestsError extends KubeApiError {
  override readonly name = "TooManyRequestsError";
  readonly code = "ERR_KUBE_TOO_MANY_REQUESTS";
  /** How long the server asked us to wait, from Retry-After or the Status details. */
  readonly retryAfterMs: number | undefined;
  constructor(httpStatus: number, status: KubeStatus, fallback: string, retryAfterMs: number | undefined) {
    super(httpStatus, status, fallback);
    this.retryAfterMs = retryAfterMs;
  }
}

export class UnauthorizedError extends KubeApiError {
  override readonly name = "UnauthorizedError";
  readonly code = "ERR_KUBE_UNAUTHORIZED";
}

export class ForbiddenError extends KubeApiError {
  override readonly name = "ForbiddenError";
  readonly code = "ERR_KUBE_FORBIDDEN";
}

export class BadRequestError extends KubeApiError {
  override readonly name = "BadRequestError";
  readonly code = "ERR_KUBE_BAD_REQUEST";
}

export class ServerError extends KubeApiError {
  override readonly name = "ServerError";
  readonly code = "ERR_KUBE_SERVER";
}

/** No answer came (connection refused, reset, timeout). */
export class ConnectionError extends KubeApiError {
  override readonly name = "ConnectionError";
  readonly code = "ERR_KUBE_CONNECTION";
  constructor(message: string, cause: unknown) {
    super(0, {}, message, { cause });
  }
}

function asStatus(body: unknown): KubeStatus {
  if (typeof body !== "object" || body === null) return {};
  const b = body as Record<string, unknown>;
  const out: KubeStatus = {};
  if (typeof b["message"] === "string") out.message = b["message"];
  if (typeof b["reason"] === "string") out.reason = b["reason"];
  if (typeof b["code"] === "number") out.code = b["code"];
  if (typeof b["details"] === "object" && b["details"] !== null) out.details = b["details"];
  return out;
}

/** Maps an HTTP error answer (status code, parsed body, Retry-After) to its error class. */
export function errorFromResponse(
  httpStatus: number,
  body: unknown,
  retryAfterHeader: string | undefined,
  what: string,
  now: number = Date.now(),
): KubeApiError {
  const status = asStatus(body);
  const fallback = `${what}: HTTP ${httpStatus}`;
  switch (httpStatus) {
    case 400:
      return new BadRequestError(httpStatus, status, fallback);
    case 401:
      return new UnauthorizedError(httpStatus, status, fallback);
    case 403:
      return new ForbiddenError(httpStatus, status, fallback);
    case 404:
      return new NotFoundError(httpStatus, status, fallback);
    case 409:
      return status.reason === "AlreadyExists"
        ? new AlreadyExistsError(httpStatus, status, fallback)
        : new ConflictError(httpStatus, status, fallback);
    case 410:
      return new GoneError(httpStatus, status, fallback);
    case 422:
      return new InvalidError(httpStatus, status, fallback);
    case 429: {
      const fromDetails = status.details?.retryAfterSeconds;
      const retryAfterMs =
        parseRetryAfter(retryAfterHeader, now) ??
        (fromDetails === undefined ? undefined : fromDetails * 1000);
      return new TooManyRequestsError(httpStatus, status, fallback, retryAfterMs);
    }
    default:
      return httpStatus >= 500
        ? new ServerError(httpStatus, status, fallback)
        : new BadRequestError(httpStatus, status, fallback);
  }
}

export function isNotFound(err: unknown): err is NotFoundError {
  return err instanceof NotFoundError;
}
