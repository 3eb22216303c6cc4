import type { Dispatcher } from "undici";
import { describeError, type TransportOptions } from "../util/transport/transport.ts";
import type { KubeObject, KubeStatus, WatchEvent } from "./core-types.ts";
import { ConnectionError, errorFromResponse, KubeApiError } from "./errors.ts";
import { readNdjson } from "./ndjson.ts";
import { answerError, failure, parseBody } from "./responses.ts";

/**
 * The events of one watch request on `transport`, decoded from its NDJSON body. Ends when the
 * server closes the stream or `signal` aborts (quietly: the caller stopped it); an ERROR event
 * throws its KubeApiError (410 Gone → GoneError), a broken stream a ConnectionError.
 */
export async function* watchStream<T extends KubeObject>(
  transport: Dispatcher,
  request: TransportOptions,
  what: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<WatchEvent<T>> {
  if (signal?.aborted) return;
  let response: Dispatcher.ResponseData;
  try {
    response = await transport.request(request);
  } catch (err) {
    if (signal?.aborted) return;
    throw failure(what, err);
  }
  const body = response.body;
  try {
    if (response.statusCode !== 200)
      throw answerError(response.statusCode, parseBody(await body.text()), response.headers, what);
    for await (const line of readNdjson(body as AsyncIterable<Uint8Array>)) {
      const ev = line as { type?: string; object?: unknown };
      if (ev.type === "ERROR") {
        const status = (ev.object ?? {}) as KubeStatus;
        throw errorFromResponse(status.code ?? 500, status, undefined, what);
      }
      if (ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED" || ev.type === "BOOKMARK") {
        yield { type: ev.type, object: ev.object as T };
      }
    }
  } catch (err) {
    if (signal?.aborted) return;
    if (err instanceof KubeApiError) throw err;
    throw new ConnectionError(`${what}: stream broken: ${describeError(err)}`, err);
  } finally {
    // An early return by the consumer must release the connection.
    if (!body.destroyed) body.destroy();
  }
}
