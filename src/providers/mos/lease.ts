import { z } from "zod";
import type { Logger } from "pino";
import { InvalidRequestError, ProviderError } from "../errors.ts";
import { parseDuration } from "../../util/duration.ts";
import type { MosApi } from "./api.ts";
import { META, metaValue, ReturnSchema, type Metadata } from "./observe.ts";

export const MosOptionsSchema = z
  .object({
    /** Lease bought on create and resize: a number and H (hours) or M (months). */
    duration: z
      .string()
      .regex(/^[1-9]\d*[HM]$/, 'a number followed by H or M, e.g. "72H" or "1M"')
      .default("1M"),
    /** Renew the lease (RenewInstance, `duration` again) when it ends within `renewBefore`. */
    autoRenew: z.boolean().default(false),
    renewBefore: z
      .string()
      .refine((v) => {
        try {
          return parseDuration(v) > 0;
        } catch {
          return false;
        }
      }, "a duration such as 72h or 7d")
      .default("72h"),
  })
  .strict();
export type MosOptions = z.infer<typeof MosOptionsSchema>;

/**
 * The object's providerOptions as the method got them (`ref.options`; absent means the
 * defaults). Never a silent fallback: options that do not parse are an InvalidRequestError,
 * because the lease they name is what MOS bills.
 */
export function leaseOptions(options: unknown, operation: string): MosOptions {
  const parsed = MosOptionsSchema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  throw new InvalidRequestError(
    `mos ${operation}: providerOptions do not parse (${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}); nothing was billed`,
    { provider: "mos", operation, reason: "InvalidProviderOptions" },
  );
}

export interface LeaseDeps {
  api: MosApi;
  log: Logger;
  now: () => number;
  /** Writes the driver's metadata keys (retried, bounded); the error when it still failed. */
  putMetadata(id: string, entries: { renewedFrom: string }): Promise<ProviderError | undefined>;
  /** Re-reads the balance after a charge. */
  refreshBalance(): Promise<void>;
}

/**
 * Auto-renewal, from inside a read (until renewal becomes a decided action): renews once per
 * lease end. The lease end it renewed from is kept in the VM's own metadata, so no driver state
 * is needed and a provider that does not move `expireAt` is never charged twice for one lease.
 * Returns what the user must know (put on the observation), undefined when all is well.
 */
export async function renewIfDue(
  deps: LeaseDeps,
  id: string,
  options: unknown,
  metadata: Metadata,
): Promise<string | undefined> {
  let opts: MosOptions;
  try {
    opts = leaseOptions(options, "RenewInstance");
  } catch (err) {
    return warn(deps, id, err);
  }
  if (!opts.autoRenew) return undefined;
  try {
    const contract = await deps.api.call(
      "GetInstanceContractInfo",
      { InstanceId: id },
      z.looseObject({ expireAt: z.coerce.string().optional() }),
      true,
    );
    const expireAt = contract.expireAt === undefined ? NaN : Date.parse(contract.expireAt);
    if (contract.expireAt === undefined || Number.isNaN(expireAt))
      return warn(deps, id, new Error("GetInstanceContractInfo gave no expireAt: the lease is not renewed"));
    if (expireAt - deps.now() > parseDuration(opts.renewBefore)) return undefined;
    if (metaValue(metadata, META.renewedFrom) === contract.expireAt)
      return warn(
        deps,
        id,
        new Error(
          `the lease was renewed from ${contract.expireAt} already and still ends then: not renewing again`,
        ),
      );
    await deps.api.call("RenewInstance", { InstanceId: id, Duration: opts.duration }, ReturnSchema, false);
    const recorded = await deps.putMetadata(id, { renewedFrom: contract.expireAt });
    if (recorded) warn(deps, id, recorded);
    await deps.refreshBalance();
    return undefined;
  } catch (err) {
    return warn(deps, id, err);
  }
}

function warn(deps: LeaseDeps, id: string, err: unknown): string {
  const text = deps.api.redact(err instanceof Error ? err.message : String(err));
  deps.log.warn(
    { instanceId: id, code: err instanceof ProviderError ? err.code : undefined },
    `mos auto-renewal: ${text}`,
  );
  return `auto-renewal: ${text}`;
}
