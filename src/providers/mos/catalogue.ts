import { createHash } from "node:crypto";
import { z } from "zod";
import type { DesiredMachine } from "../driver.ts";
import { InvalidRequestError } from "../errors.ts";
import { TtlCache } from "../ttl-cache.ts";
import type { MosCalls } from "./api.ts";
import { leaseOptions, type MosOptions } from "./lease.ts";
import { InstanceTypeSetSchema, KeyPairSetSchema, TemplateSetSchema } from "./observe.ts";
import { PAGE, readPages } from "./paging.ts";

interface Lists {
  types: { name: string; id: string | undefined }[];
  templates: { id: string; name: string }[];
}

/**
 * The account's instance types, templates and key pairs: what a spec may name. The lists are
 * cached for the account; a load runs with the signal of the call that started it, so a
 * cancelled load fails every call waiting on it (each retries later; a failed load is not kept).
 */
export class Catalogue {
  readonly #cache: TtlCache<Lists>;

  constructor(now: () => number) {
    this.#cache = new TtlCache<Lists>(now);
  }

  async #load(calls: MosCalls): Promise<Lists> {
    return this.#cache.get(600_000, async () => {
      const types = await readPages(
        calls,
        "DescribeInstanceTypes",
        async (offset) => {
          const page = await calls.call(
            "DescribeInstanceTypes",
            { Limit: String(PAGE), Offset: String(offset) },
            InstanceTypeSetSchema,
            true,
          );
          return { rows: page.InstanceTypeSet?.InstanceType ?? [], total: page.InstanceTypeSet?.Total };
        },
        (t) => t.instanceTypeId ?? t.instanceType,
      );
      const templates = await calls.call("DescribeTemplates", {}, TemplateSetSchema, true);
      return {
        types: types.map((r) => ({ name: r.instanceType, id: r.instanceTypeId })),
        templates: (templates.TemplateSet?.Template ?? [])
          .filter((t) => t.status === undefined || t.status === "active")
          .map((t) => ({ id: t.templateId, name: t.templateName ?? "" })),
      };
    });
  }

  async validate(desired: DesiredMachine<MosOptions>, calls: MosCalls): Promise<void> {
    const { plan, image } = desired;
    if (plan === undefined || image === undefined)
      throw refuse("mos needs spec.plan (an instance type) and spec.image (a template id)", "InvalidSpec");
    if (desired.sshKeys.length > 1)
      throw refuse(
        "MOS attaches one key pair per instance: give at most one entry in sshKeys",
        "InvalidSpec",
      );
    leaseOptions(desired.options, "validate");
    const c = await this.#load(calls);
    if (!c.types.some((t) => t.name === plan)) {
      // DescribeInstances reports a type by name, so an id in the spec would never match it.
      const byId = c.types.find((t) => t.id === plan);
      throw refuse(
        byId
          ? `"${plan}" is the id of instance type "${byId.name}": give its name in spec.plan`
          : `no instance type "${plan}"; choose one of ${c.types.map((t) => t.name).join(", ")}`,
        "UnknownPlan",
      );
    }
    if (!c.templates.some((t) => t.id === image))
      throw refuse(
        `no template "${image}"; choose one of ${c.templates.map((t) => `${t.id} (${t.name})`).join(", ")}`,
        "UnknownImage",
      );
  }

  /**
   * The key pair for a public key, imported under a name derived from the key itself; the name
   * is the one MOS's answer gives (its KeyPair.keyName).
   */
  async keyName(publicKey: string, calls: MosCalls): Promise<string> {
    const name = `cio-${createHash("sha256").update(publicKey.trim()).digest("hex").slice(0, 16)}`;
    const known = await calls.call(
      "DescribeKeyPairs",
      { "Filter.1.Name": "name", "Filter.1.Value.1": name },
      KeyPairSetSchema,
      true,
    );
    if ((known.KeyPairSet?.KeyPair ?? []).some((k) => k.keyName === name)) return name;
    const imported = await calls.call(
      "ImportKeyPair",
      { KeyName: name, PublicKeyMaterial: publicKey.trim() },
      z.looseObject({ KeyPair: z.looseObject({ keyName: z.coerce.string() }) }),
      false,
    );
    return imported.KeyPair.keyName;
  }
}

function refuse(message: string, reason: string): InvalidRequestError {
  return new InvalidRequestError(`mos: ${message}`, { provider: "mos", reason });
}
