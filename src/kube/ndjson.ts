/**
 * Splits a byte stream into JSON values, one per line. Chunk boundaries may fall anywhere,
 * including inside a multi-byte UTF-8 character, so bytes are decoded in streaming mode and
 * only complete lines are parsed.
 */
export class NdjsonDecoder {
  readonly #decoder = new TextDecoder("utf-8");
  #buffer = "";

  /** Feeds a chunk; returns the values of every line it completed. */
  push(chunk: Uint8Array | string): unknown[] {
    this.#buffer += typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    const out: unknown[] = [];
    let nl = this.#buffer.indexOf("\n");
    while (nl >= 0) {
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 1);
      this.#parse(line, out);
      nl = this.#buffer.indexOf("\n");
    }
    return out;
  }

  /** Flushes a last line that had no trailing newline. */
  end(): unknown[] {
    this.#buffer += this.#decoder.decode();
    const out: unknown[] = [];
    this.#parse(this.#buffer, out);
    this.#buffer = "";
    return out;
  }

  #parse(line: string, out: unknown[]): void {
    const trimmed = line.trim();
    if (trimmed === "") return;
    try {
      out.push(JSON.parse(trimmed));
    } catch (err) {
      throw new NdjsonError(`malformed watch line (${trimmed.length} bytes)`, { cause: err });
    }
  }
}

export class NdjsonError extends Error {
  override readonly name = "NdjsonError";
  readonly code = "ERR_KUBE_NDJSON";
}

export async function* readNdjson(stream: AsyncIterable<Uint8Array | string>): AsyncGenerator {
  const decoder = new NdjsonDecoder();
  for await (const chunk of stream) yield* decoder.push(chunk);
  yield* decoder.end();
}
