import { pino, type Logger, type DestinationStream, type Level } from "pino";
import type { ProviderDefinition } from "../providers/definition.ts";
import { PROVIDERS } from "../providers/registry.ts";

export type { Logger };
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Header and field paths that may hold credentials anywhere in a log object: these, every
 * provider's Secret keys and its definition's `redact.logPaths`. The HTTP layer redacts values
 * it knows; this is the second net for anything logged by shape.
 */
const COMMON_REDACT_PATHS = ["*.authorization", "*.Authorization", "*.headers.authorization", "*.data"];

export function redactPaths(
  defs: readonly Pick<ProviderDefinition, "credentialKeys" | "redact">[],
): string[] {
  const paths = new Set(COMMON_REDACT_PATHS);
  for (const d of defs) {
    for (const key of [...d.credentialKeys.required, ...d.credentialKeys.optional]) paths.add(`*.${key}`);
    for (const path of d.redact.logPaths) paths.add(path);
  }
  return [...paths];
}

const REDACT_PATHS = redactPaths(PROVIDERS);

export function createLogger(opts: {
  level: LogLevel | Level;
  destination?: DestinationStream;
  name?: string;
}): Logger {
  return pino(
    {
      name: opts.name ?? "cloud-instance-operator",
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
