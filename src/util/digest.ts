import { createHash } from "node:crypto";

/**
 * A short, stable digest naming something that must not be shown (an account id, a
 * credential) in a metric label, a log line or a pool key: equal inputs give equal digests,
 * and the input cannot be read back from it.
 */
export function shortDigest(...parts: readonly string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 16);
}
