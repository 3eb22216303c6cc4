import { describeError } from "../util/transport/transport.ts";
import { ConnectionError, errorFromResponse, type KubeApiError } from "./errors.ts";
import { KubeConfigError } from "./kubeconfig-errors.ts";

/** No answer: a credential that could not be obtained stays itself, anything else is a ConnectionError. */
export function failure(what: string, err: unknown): Error {
  if (err instanceof KubeConfigError) return err;
  return new ConnectionError(`${what}: ${describeError(err)}`, err);
}

/** An answer's body: JSON, undefined when empty, or (a proxy's HTML page …) its start as a message. */
export function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { message: text.slice(0, 500) };
  }
}

/** A non-2xx answer as its KubeApiError, with Retry-After for 429s. */
export function answerError(
  statusCode: number,
  body: unknown,
  headers: Record<string, string | string[] | undefined>,
  what: string,
): KubeApiError {
  return errorFromResponse(statusCode, body, header(headers, "retry-after"), what);
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
