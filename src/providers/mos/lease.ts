import { z } from "zod";
import { InvalidRequestError, ProviderError, TransientError } from "../errors.ts";
import { parseDuration } from "../../util/duration.ts";
import type { MosCalls } from "./api.ts";
import { META, metaValue, type Metadata } from "./observe.ts";
import { action, leaseEnd, metadata, putMetadata } from "./reads.ts";

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

export interface RenewDeps {
  redact: (text: string) => string;
  now: () => number;
  warn: (what: string, id: string, err: unknown) => void;
  /** Re-reads the balance after a charge. */
  refreshBalance: (calls: MosCalls) => Promise<void>;
}

/** What a read says about the lease: due for renewal, or what stops it (a message for the user). */
export type LeaseView = { renewalDue: { message: string } } | { message: string } | undefined;

/**
 * The lease as a read sees it, when the object's options ask for auto-renewal: one
 * GetInstanceContractInfo, nothing billed. A lease whose end a renewal was already sent from
 * is not due again (the mark in the VM's metadata), whatever MOS shows.
 */
export async function leaseView(
  calls: MosCalls,
  id: string,
  options: unknown,
  meta: Metadata,
  now: () => number,
): Promise<LeaseView> {
  let opts: MosOptions;
  try {
    opts = leaseOptions(options, "RenewInstance");
  } catch (err) {
    return { message: `auto-renewal: ${(err as Error).message}` };
  }
  if (!opts.autoRenew) return undefined;
  let end: string | undefined;
  try {
    end = await leaseEnd(calls, id);
  } catch (err) {
    // The observation outlives a failed contract read; a cancelled call does not go on.
    if (calls.signal?.aborted || !(err instanceof ProviderError)) throw err;
    return { message: `auto-renewal: ${err.message}` };
  }
  if (end === undefined)
    return { message: "auto-renewal: GetInstanceContractInfo gave no expireAt: the lease is not renewed" };
  if (Date.parse(end) - now() > parseDuration(opts.renewBefore)) return undefined;
  if (metaValue(meta, META.renewedFrom) === end)
    return {
      message: `auto-renewal: a renewal from the lease end ${end} was sent already and MOS still shows that end: not renewing again (check the lease at MOS)`,
    };
  return {
    renewalDue: {
      message: `the lease ends ${end}, within renewBefore ${opts.renewBefore}: renewing it for ${opts.duration}`,
    },
  };
}

/**
 * RenewInstance (billed, never repeated blindly) for the options' duration. The lease end it
 * renews from is written to the VM's metadata first: after a crash, a lost answer or a MOS that
 * moves `expireAt` late, the next read sees the mark and never asks to renew that end again. A
 * renewal MOS refused with a 4xx did not happen, so the mark is cleared; one that got a 5xx or
 * no answer may have been billed, so the mark stays (a person checks; see the read's message).
 * Nothing is sent when the lease is no longer due (a stale decision).
 */
export async function renewLease(
  deps: RenewDeps,
  calls: MosCalls,
  id: string,
  options: unknown,
): Promise<void> {
  const opts = leaseOptions(options, "RenewInstance");
  const end = await leaseEnd(calls, id);
  if (end === undefined)
    throw new TransientError(
      "mos RenewInstance: GetInstanceContractInfo gave no expireAt; nothing was billed",
      {
        provider: "mos",
        operation: "RenewInstance",
      },
    );
  if (Date.parse(end) - deps.now() > parseDuration(opts.renewBefore)) return;
  if (metaValue(await metadata(calls, id), META.renewedFrom) === end)
    throw new InvalidRequestError(
      `mos RenewInstance: a renewal from the lease end ${end} was sent already; nothing was billed`,
      { provider: "mos", operation: "RenewInstance", reason: "AlreadyRenewed" },
    );
  const unrecorded = await putMetadata(calls, id, { renewedFrom: end }, deps.redact);
  if (unrecorded) throw unrecorded;
  try {
    await action(calls, "RenewInstance", { InstanceId: id, Duration: opts.duration }, deps.redact, true);
  } catch (err) {
    if (err instanceof ProviderError && err.httpStatus !== undefined && err.httpStatus < 500) {
      const cleared = await putMetadata(calls, id, { renewedFrom: "" }, deps.redact);
      if (cleared)
        deps.warn(`the renewal mark of VM ${id} could not be cleared after MOS refused it`, id, cleared);
    }
    throw err;
  }
  await deps.refreshBalance(calls);
}
