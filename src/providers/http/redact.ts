/**
 * Query/form field names whose values are credentials, whatever the provider; each provider's
 * definition adds its own (`redact.fields`: MOS `Signature`, BILLmanager `authinfo` …).
 */
const COMMON_SECRET_FIELDS = ["password", "passwd", "auth", "token", "secret", "access_token"];

export const REDACTED = "[REDACTED]";

/**
 * Removes every known secret from text before it reaches a log line, an error, an Event or a
 * status message. Knows the literal secrets of one credential set (and their URL/base64
 * encodings, which is how they travel) plus the field names that carry them.
 */
export class Redactor {
  readonly #needles: string[];
  readonly #fields: ReadonlySet<string>;

  constructor(secrets: Iterable<string>, fields: Iterable<string> = []) {
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
    this.#fields = new Set([...COMMON_SECRET_FIELDS, ...fields].map((f) => f.toLowerCase()));
  }

  text(input: string): string {
    let out = input;
    for (const n of this.#needles) if (out.includes(n)) out = out.split(n).join(REDACTED);
    return out.replace(
      /([?&;](?:[A-Za-z_]+\.)?)([A-Za-z_]+)=([^&#\s"']*)/g,
      (match, pre: string, key: string) =>
        this.#fields.has(key.toLowerCase()) ? `${pre}${key}=${REDACTED}` : match,
    );
  }
}
