import type { Secret } from "./ports.ts";

/** Secret data as strings: base64 `data` decoded, `stringData` (not yet folded by the server) on top. */
export function decodeSecret(secret: Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, "base64").toString("utf8");
  for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
  return out;
}
