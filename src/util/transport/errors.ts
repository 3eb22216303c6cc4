/**
 * How the transport core classifies failures, written once for the kube client and the
 * provider clients.
 */

/** A failure and its `cause`s, outermost first (undici and fetch wrap socket errors); at most 5. */
function* causes(err: unknown): Generator<object> {
  for (let e = err, depth = 0; typeof e === "object" && e !== null && depth < 5; depth++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}

/** The error code of a failure, following `cause`. */
export function errorCode(err: unknown): string | undefined {
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** The first error of a class along a failure's `cause` chain. */
export function causeOf<T>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (const e of causes(err)) if (e instanceof type) return e;
  return undefined;
}

/**
 * Failures raised before a single byte of the request can have reached the server: repeating
 * them is safe for every verb, a create included.
 */
const NEVER_SENT = new Set([
  "ECONNREFUSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/** The one definition of "the request was never sent". */
export function neverSent(err: unknown): boolean {
  return NEVER_SENT.has(errorCode(err) ?? "");
}

/**
 * A failure of the network or the peer (socket, TLS, timeout), as opposed to a local one such
 * as a credential plugin that failed: only these are worth repeating.
 */
export function isTransportFailure(err: unknown): boolean {
  if (err instanceof DeadlineExceededError) return true;
  const code = errorCode(err) ?? "";
  return (
    code.startsWith("UND_ERR_") ||
    /^E[A-Z]+$/.test(code) ||
    code.startsWith("ERR_TLS_") ||
    code.startsWith("ERR_SSL_")
  );
}

const TIMEOUT_CODES = new Set([
  "ERR_TRANSPORT_DEADLINE",
  "ERR_TRANSPORT_CALL_DEADLINE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);

/** "timeout" or "error": the label metrics give a request that got no answer. */
export function failureKind(err: unknown): "timeout" | "error" {
  return TIMEOUT_CODES.has(errorCode(err) ?? "") ? "timeout" : "error";
}

/** A one-line description with the code, for error messages (callers redact it). */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = errorCode(err);
  return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

/** One attempt took longer than its deadline. */
export class DeadlineExceededError extends Error {
  override readonly name = "DeadlineExceededError";
  readonly code = "ERR_TRANSPORT_DEADLINE";
}

/**
 * A whole call (rate-limit waits, every attempt, headers and body) took longer than its
 * deadline. Never repeated: the time the caller allowed is spent.
 */
export class CallDeadlineExceededError extends Error {
  override readonly name = "CallDeadlineExceededError";
  readonly code = "ERR_TRANSPORT_CALL_DEADLINE";
  readonly deadlineMs: number;
  constructor(message: string, deadlineMs: number) {
    super(message);
    this.deadlineMs = deadlineMs;
  }
}

/**
 * An answer larger than the cap: its body was abandoned (the connection closed) once it
 * passed `limitBytes`, or at once when its Content-Length said it would. Not repeated: the
 * same request would bring the same answer.
 */
export class ResponseTooLargeError extends Error {
  override readonly name = "ResponseTooLargeError";
  readonly code = "ERR_TRANSPORT_RESPONSE_TOO_LARGE";
  readonly limitBytes: number;
  constructor(message: string, limitBytes: number) {
    super(message);
    this.limitBytes = limitBytes;
  }
}

/** The error an aborted signal stands for: its reason when that is an Error. */
export function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException("aborted", "AbortError");
}

/**
 * A limiter refused to queue a request that would wait longer than its caller allows (an
 * admitted reconcile never waits inside an account's limiter). Nothing was sent; never
 * repeated by the transport: the caller requeues its work for `retryAfterMs` (undefined when
 * the wait depends on requests ending, not on the clock).
 */
export class QueueWaitRefusedError extends Error {
  override readonly name = "QueueWaitRefusedError";
  readonly code = "ERR_TRANSPORT_WAIT_REFUSED";
  readonly retryAfterMs: number | undefined;
  constructor(waitMs: number) {
    super(
      Number.isFinite(waitMs)
        ? `rate limit: the request would wait ${String(waitMs)} ms for a token`
        : "concurrency limit: every request slot is busy",
    );
    this.retryAfterMs = Number.isFinite(waitMs) ? waitMs : undefined;
  }
}
