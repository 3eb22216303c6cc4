import type { ProviderDefinition } from "../providers/definition.ts";

/**
 * Parses `providerOptions` with the driver's schema; on failure, one message naming every
 * bad field (`m2s: providerOptions.backupEnabled: expected boolean`), shared by both reconcilers.
 */
export function parseProviderOptions(
  factory: ProviderDefinition,
  options: Record<string, unknown> | undefined,
): { ok: true; options: unknown } | { ok: false; message: string } {
  const parsed = factory.optionsSchema.safeParse(options ?? {});
  if (parsed.success) return { ok: true, options: parsed.data };
  const detail = parsed.error.issues
    .map((i) => `providerOptions${i.path.length ? "." + i.path.join(".") : ""}: ${i.message}`)
    .join("; ");
  return { ok: false, message: `${factory.provider}: ${detail}` };
}
