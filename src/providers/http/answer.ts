import type { z } from "zod";
import type { HttpResponse } from "./client.ts";
import {
  InvalidRequestError,
  NotFoundError,
  QuotaOrBillingError,
  RateLimitedError,
  TransientError,
  UnauthorizedError,
  type ProviderError,
} from "../errors.ts";
import { parseRetryAfter } from "../../util/backoff.ts";

/**
 * Parses a provider answer with its zod schema. A body that does not match is a TransientError
 * naming the operation: the provider may be mid-deploy, and a crash would lose the object's
 * other work.
 */
export function parseAnswer<T>(
  schema: z.ZodType<T>,
  body: unknown,
  where: { provider: string; operation: string; httpStatus?: number },
): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const at = issue && issue.path.length > 0 ? ` at ${issue.path.join(".")}` : "";
  throw new TransientError(
    `${where.provider} ${where.operation}: malformed answer${at}: ${issue?.message ?? "unexpected shape"}`,
    where,
  );
}

/**
 * The usual HTTP status -> typed error mapping of REST providers. `message` must already be
 * redacted and prefixed; a driver handles its provider's exceptions before calling this.
 */
export function errorForStatus(
  res: HttpResponse,
  message: string,
  details: { provider: string; operation: string; providerCode?: string },
): ProviderError {
  const d = { ...details, httpStatus: res.status };
  switch (res.status) {
    case 401:
    case 403:
      return new UnauthorizedError(message, d);
    case 402:
      return new QuotaOrBillingError(message, d);
    case 404:
      return new NotFoundError(message, d);
    case 429: {
      const retryAfterMs = parseRetryAfter(res.headers["retry-after"]);
      return new RateLimitedError(message, { ...d, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
    }
    case 400:
    case 422:
      return new InvalidRequestError(message, d);
    default:
      // 409 (busy/locked), 5xx and anything unexpected: try again later.
      return new TransientError(message, d);
  }
}
