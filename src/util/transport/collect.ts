import type { Dispatcher } from "undici";
import { NO_CONTROLLER, type Controller, type Handler, type TransportOptions } from "./types.ts";

type ResponseHeaders = Parameters<NonNullable<Handler["onResponseStart"]>>[2];

/** A whole answer: status, headers and the body in one Buffer. */
export interface Answer {
  statusCode: number;
  headers: ResponseHeaders;
  body: Buffer;
}

/**
 * Sends one request through a transport and collects its whole answer. Every answer the
 * operator reads is small JSON read whole, so this replaces undici's `request()`, whose
 * per-request AsyncResource, Readable stream, abort listener and consume machinery were most
 * of the JS cost of a request outside the socket writes (see README, operator-bound).
 *
 * What bounds the answer stays in the transport's layers, not here: the response cap
 * aborts a body past its limit, the deadline layers end a slow one, and the deadline layer
 * (present in every `buildTransport`) honours `opts.signal` — this handler adds no listener
 * of its own. On a bare dispatcher the signal would be ignored: use a built transport.
 */
export function send(dispatcher: Dispatcher, opts: TransportOptions): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const handler = new CollectingHandler(resolve, reject);
    try {
      dispatcher.dispatch(opts, handler);
    } catch (err) {
      // Invalid options throw synchronously; request() reports them as a rejection too.
      handler.onResponseError(NO_CONTROLLER, err instanceof Error ? err : new Error(String(err)));
    }
  });
}

/** The body as text, a leading UTF-8 byte order mark dropped (as undici's `body.text()`). */
export function bodyText(body: Buffer): string {
  const start = body.length > 2 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  return body.toString("utf8", start);
}

const EMPTY = Buffer.alloc(0);

class CollectingHandler implements Handler {
  readonly #resolve: (answer: Answer) => void;
  readonly #reject: (err: Error) => void;
  #statusCode = 0;
  #headers: ResponseHeaders = {};
  #chunks: Buffer[] = [];
  #length = 0;
  #settled = false;

  constructor(resolve: (answer: Answer) => void, reject: (err: Error) => void) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onRequestStart(): void {
    // Nothing to keep: aborting is the layers' job (see `send`).
  }

  onResponseStart(_controller: Controller, statusCode: number, headers: ResponseHeaders): void {
    // 1xx answers are informational; the final answer follows on the same request.
    if (statusCode < 200) return;
    this.#statusCode = statusCode;
    this.#headers = headers;
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    this.#settled = true;
    const chunks = this.#chunks;
    const body = chunks.length === 1 ? (chunks[0] ?? EMPTY) : Buffer.concat(chunks, this.#length);
    this.#chunks = [];
    this.#resolve({ statusCode: this.#statusCode, headers: this.#headers, body });
  }

  onResponseError(_controller: Controller, err: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#chunks = [];
    this.#reject(err);
  }
}
