/** Header names whose values are credentials, whatever the provider. */
const SECRET_HEADERS = new Set([
  "authorization",
  "x-token",
  "cookie",
  "set-cookie",
  "x-auth-token",
  "proxy-authorization",
]);
/** Query/form field names whose values are credentials or signatures. */
const SECRET_FIELDS =
  /^(signature|password|passwd|authinfo|auth|token|apikey|api_key|secret|secretaccesskey|access_token)$/i;

export const REDACTED = "[REDACTED]";

/**
 * Removes every known secret from text before it reaches a log line, an error, an Event or a
 * status message. Knows the literal secrets of one credential set (and their URL/base64
 * encodings, which is how they travel) plus the field and header names that carry them.
 */
export class Redactor {
  readonly #needles: string[];

  constructor(secrets: Iterable<string>) {
    const needles = new Set<string>();
    for (const s of secrets) {
      // Very short values would shred ordinary text and cannot be meaningful secrets.
      if (s.length < 4) continue;
      needles.add(s);
      needles.add(encodeURIComponent(s));
      needles.add(encodeURIComponent(s).replace(/%20/g, "+"));
      needles.add(Buffer.from(s).toString("base64"));
    }
    // Longest first so a secret containing another is removed whole.
    this.#needles = [...needles].sort((a, b) => b.length - a.length);
  }

  /** A redactor that also knows these extra secrets (e.g. a session id learnt at runtime). */
  with(extra: Iterable<string>): Redactor {
    return new Redactor([...this.#needles, ...extra]);
  }

  text(input: string): string {
    let out = input;
    for (const n of this.#needles) if (out.includes(n)) out = out.split(n).join(REDACTED);
    return out.replace(
      /([?&;](?:[A-Za-z_]+\.)?)([A-Za-z_]+)=([^&#\s"']*)/g,
      (match, pre: string, key: string) => (SECRET_FIELDS.test(key) ? `${pre}${key}=${REDACTED}` : match),
    );
  }

  headers(headers: Record<string, string | string[] | undefined>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) continue;
      const value = Array.isArray(v) ? v.join(", ") : v;
      out[k] = SECRET_HEADERS.has(k.toLowerCase()) ? REDACTED : this.text(value);
    }
    return out;
  }

  fields(fields: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(fields)) out[k] = SECRET_FIELDS.test(k) ? REDACTED : this.text(v);
    return out;
  }
}
