import { z } from "zod";
import { InvalidRequestError, NotFoundError, ProviderError, UnsupportedError } from "../errors.ts";
import { NO_WRITE_ENDPOINT, SshKeySchema, type VscaleApi } from "./api.ts";

const PUBLIC_KEY = /^(ssh-|ecdsa-|sk-)/;

const noKeysEndpoint = (entry: string): UnsupportedError =>
  new UnsupportedError(
    `this Vscale API has no /sshkeys endpoint, so the key "${entry.slice(0, 40)}…" cannot be looked up or registered: ` +
      `put the key's numeric id from the Vscale panel in spec.sshKeys (the document's create takes key ids)`,
    { provider: "vscale", operation: "sshkey" },
  );

/**
 * The `keys` ids of a create. A number is a key id as the document's create takes it and is
 * sent as is; a public key or a key name needs `/sshkeys` (not in the document), where a
 * public key Vscale does not know yet is registered once. Nothing is created when one fails.
 */
export async function keyIds(
  api: VscaleApi,
  entries: readonly string[],
  owner: string,
  signal?: AbortSignal,
): Promise<number[]> {
  const ids: number[] = [];
  const named = entries.map((e) => e.trim()).filter((e) => !/^\d{1,12}$/.test(e));
  for (const e of entries) if (/^\d{1,12}$/.test(e.trim())) ids.push(Number(e.trim()));
  const [first] = named;
  if (first === undefined) return ids;
  const known = await api.optional("/sshkeys", z.array(SshKeySchema), "sshkeys", signal);
  if (known === undefined) throw noKeysEndpoint(first);
  for (const [i, entry] of named.entries()) {
    const found = known.find((k) => k.key.trim() === entry || k.name === entry);
    if (found) {
      ids.push(found.id);
      continue;
    }
    if (!PUBLIC_KEY.test(entry))
      throw new InvalidRequestError(
        `vscale: no SSH key named "${entry.slice(0, 60)}" at Vscale; give a public key, a registered key's name or its numeric id`,
        { provider: "vscale", reason: "InvalidSpec" },
      );
    try {
      // A key POST is safe to repeat: the lookup above finds it next time.
      const created = await api.write(
        {
          method: "POST",
          path: "/sshkeys",
          json: { key: entry, name: `cio-${owner.slice(0, 8)}-${String(i)}` },
          operation: "sshkey",
          idempotent: true,
          signal,
        },
        SshKeySchema,
      );
      ids.push(created.body.id);
    } catch (err) {
      if (
        err instanceof NotFoundError ||
        (err instanceof ProviderError && NO_WRITE_ENDPOINT.has(err.httpStatus ?? 0))
      )
        throw noKeysEndpoint(entry);
      throw err;
    }
  }
  return ids;
}
