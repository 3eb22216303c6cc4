import { pino, type Logger, type DestinationStream, type Level } from "pino";

export type { Logger };
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Header and field paths that may hold credentials anywhere in a log object. The HTTP layer
 * redacts values it knows; this is the second net for anything logged by shape.
 */
const REDACT_PATHS = [
  "*.authorization",
  "*.Authorization",
  "*.headers.authorization",
  "*.headers['x-token']",
  "*.password",
  "*.token",
  "*.apiKey",
  "*.secretAccessKey",
  "*.Signature",
  "*.data",
];

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
