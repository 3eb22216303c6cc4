import { createHash } from "node:crypto";
import { z } from "zod";
import {
  methodCapabilities,
  type Capability,
  type Driver,
  type DriverContext,
  type StateTable,
} from "./driver.ts";
import type { HttpClient, HttpClientOptions } from "./http/client.ts";

/**
 * What a provider is, as data: everything outside the driver's own code that used to be
 * written by hand in other files (the CRD's enum and field descriptions, the README and docs
 * tables, the redaction lists, the test matrices) is derived from it. Checked by zod when the
 * registry loads, so a definition with a hole fails at startup and in every test.
 */
export const ProviderFactsSchema = z
  .object({
    /** `spec.provider.name`: lower-case letters and digits. */
    provider: z.string().regex(/^[a-z][a-z0-9]{1,30}$/),
    /** Documented public API base URL; also what `--allowed-endpoints=default` allows. */
    defaultEndpoint: z.url(),
    /** Secret keys the driver reads; required ones are checked before the driver is built. */
    credentialKeys: z.object({
      required: z.array(z.string().min(1)).readonly(),
      optional: z.array(z.string().min(1)).readonly(),
    }),
    /** The provider's word for each machine field, for the CRD descriptions ("MOS zone"). */
    fields: z.object({ region: z.string().min(1), plan: z.string().min(1), image: z.string().min(1) }),
    /** The README/docs row. */
    docs: z.object({
      /** The provider's words for an action where they differ ("order" for create, "upgrade" for resize). */
      actions: z.record(z.string(), z.string()).optional(),
      notes: z.string().min(1),
    }),
    /**
     * Names of query/form fields that carry secrets in this provider's requests (redacted in
     * every error text), and log-object paths the logger must censor, beyond the credential keys.
     */
    redact: z.object({
      fields: z.array(z.string().min(1)).readonly(),
      logPaths: z.array(z.string().min(1)).readonly(),
    }),
  })
  .strict();

/**
 * A driver's class: the methods of its prototype are what its drivers can do (methodCapabilities).
 * Typed loosely on purpose: `Driver` names ProviderName, which is derived from the definitions.
 */
export type DriverClass = abstract new (...args: never[]) => object;

/**
 * One provider as its folder writes it: its facts plus the code (options schema, state table,
 * driver class and constructor). What it can do is not written here: it is the methods its
 * driver class has.
 */
export interface ProviderSpec<Name extends string = string, Options = unknown> {
  readonly provider: Name;
  readonly defaultEndpoint: string;
  readonly credentialKeys: { readonly required: readonly string[]; readonly optional: readonly string[] };
  readonly fields: { readonly region: string; readonly plan: string; readonly image: string };
  readonly docs: {
    readonly actions?: Partial<Record<Capability | "create", string>>;
    readonly notes: string;
  };
  readonly redact: { readonly fields: readonly string[]; readonly logPaths: readonly string[] };
  /** Validates `spec.providerOptions`. */
  readonly optionsSchema: z.ZodType<Options>;
  /** The provider's status values mapped onto phases (rendered into docs/providers/<name>.md). */
  readonly states: StateTable;
  /** The class `create` builds (checked by test/providers/capabilities.test.ts). */
  readonly driver: DriverClass;
  create(ctx: DriverContext): Driver<Options>;
}

/** A provider with the facts derived from its driver class. */
export interface ProviderDefinition<Name extends string = string, Options = unknown> extends ProviderSpec<
  Name,
  Options
> {
  /**
   * The most a driver of this provider can do: the methods of its class (a driver may lack some
   * on an account at runtime: capabilitiesOf). For the docs tables and for checks made before
   * any driver exists.
   */
  readonly capabilities: ReadonlySet<Capability>;
  /**
   * Its drivers mirror InstanceTemplates remotely (capability remoteTemplates), so templates
   * need credentials too. Always set by defineProvider.
   */
  readonly mirrorsTemplates?: boolean;
}

/** Checks a definition's data once (at import) and returns it with the facts its driver class gives. */
export function defineProvider<const Name extends string, Options>(
  def: ProviderSpec<Name, Options>,
): ProviderDefinition<Name, Options> {
  const checked = ProviderFactsSchema.safeParse({
    provider: def.provider,
    defaultEndpoint: def.defaultEndpoint,
    credentialKeys: def.credentialKeys,
    fields: def.fields,
    docs: def.docs,
    redact: def.redact,
  });
  if (!checked.success) throw new Error(`provider definition "${def.provider}": ${checked.error.message}`);
  const capabilities = methodCapabilities(def.driver.prototype as object);
  return { ...def, capabilities, mirrorsTemplates: capabilities.has("remoteTemplates") };
}

/** A short digest naming one credential (the per-credential rate limit's key); never the secret. */
export function credentialDigest(...parts: readonly string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 16);
}

/**
 * The HTTP client every driver builds the same way: the definition's name and default
 * endpoint, its redacted field names, the credential's digest as the rate-limit key.
 */
export function providerClient(
  def: Pick<ProviderDefinition, "provider" | "defaultEndpoint" | "redact">,
  ctx: DriverContext,
  opts: Omit<HttpClientOptions, "provider" | "baseUrl" | "secretFields">,
): HttpClient {
  return ctx.http.client({
    provider: def.provider,
    baseUrl: ctx.endpoint ?? def.defaultEndpoint,
    secretFields: def.redact.fields,
    ...opts,
  });
}
