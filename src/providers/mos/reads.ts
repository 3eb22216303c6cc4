import { z } from "zod";
import { sleep } from "../../util/clock.ts";
import { ProviderError, TransientError, UnauthorizedError } from "../errors.ts";
import { refusedByProvider, type MosCalls } from "./api.ts";
import { PAGE, readPages } from "./paging.ts";
import {
  InstanceSetSchema,
  metadataParams,
  MetadataSchema,
  ReturnSchema,
  type Instance,
  type Metadata,
} from "./observe.ts";

/** Attempts of a metadata write the VM's record depends on (the HTTP layer retries 5xx inside each). */
const METADATA_ATTEMPTS = 3;

export type MetadataEntries = Parameters<typeof metadataParams>[1];

/** DescribeInstances, every page (bounded by the page cap); terminated instances count as gone. */
export async function describe(calls: MosCalls, params: Record<string, string>): Promise<Instance[]> {
  const rows = await readPages(
    calls,
    "DescribeInstances",
    async (offset) => {
      const out = await calls.call(
        "DescribeInstances",
        { ...params, Limit: String(PAGE), Offset: String(offset) },
        InstanceSetSchema,
        true,
      );
      return { rows: out.InstanceSet?.Instance ?? [], total: out.InstanceSet?.Total };
    },
    (i) => i.instanceId,
  );
  return rows.filter((i) => i.status !== "terminated");
}

/**
 * The instance with this id, or undefined when MOS does not list it. The row is matched by id
 * (a filter the API ignored must not hand us another VM); if MOS refuses the id filter itself,
 * the whole list decides.
 */
export async function find(calls: MosCalls, id: string): Promise<Instance | undefined> {
  let rows: Instance[];
  try {
    rows = await describe(calls, { "InstanceId.1": id });
  } catch (err) {
    if (!refusedByProvider(err)) throw err;
    rows = await describe(calls, {});
  }
  return rows.find((i) => i.instanceId === id);
}

export async function metadata(calls: MosCalls, id: string): Promise<Metadata> {
  const out = await calls.call("GetInstanceMetadata", { InstanceId: id }, MetadataSchema, true);
  return out.InstanceMetadata ?? {};
}

/** The metadata of a VM just listed, or undefined when it vanished in between (DescribeInstances decides). */
export async function metadataOf(calls: MosCalls, id: string): Promise<Metadata | undefined> {
  try {
    return await metadata(calls, id);
  } catch (err) {
    if (refusedByProvider(err) && !(await find(calls, id))) return undefined;
    throw err;
  }
}

/** An action answering `return: True`; `once`: never repeated blindly (billed, or wipes a disk). */
export async function action(
  calls: MosCalls,
  name: string,
  params: Record<string, string>,
  redact: (text: string) => string,
  once = false,
): Promise<void> {
  const out = await calls.call(name, params, ReturnSchema, !once);
  if (out.return !== "True")
    throw new TransientError(`mos ${name}: answered return=${redact(out.return)}`, {
      provider: "mos",
      operation: name,
    });
}

/**
 * PutInstanceMetadata, retried a few times; the last error when it still failed. A cancelled
 * call stops at once (its signal also ends the wait between attempts).
 */
export async function putMetadata(
  calls: MosCalls,
  id: string,
  entries: MetadataEntries,
  redact: (text: string) => string,
): Promise<ProviderError | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      await action(calls, "PutInstanceMetadata", metadataParams(id, entries), redact);
      return undefined;
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      if (err instanceof UnauthorizedError || attempt >= METADATA_ATTEMPTS || calls.signal?.aborted)
        return err;
      await sleep(200 * attempt, calls.signal);
    }
  }
}

/** The lease end GetInstanceContractInfo gives, verbatim, or undefined when it gives none that parses. */
export async function leaseEnd(calls: MosCalls, id: string): Promise<string | undefined> {
  const contract = await calls.call(
    "GetInstanceContractInfo",
    { InstanceId: id },
    z.looseObject({ expireAt: z.coerce.string().optional() }),
    true,
  );
  const at = contract.expireAt;
  return at === undefined || Number.isNaN(Date.parse(at)) ? undefined : at;
}
