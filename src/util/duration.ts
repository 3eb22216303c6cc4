const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export class DurationError extends Error {
  readonly code = "ERR_INVALID_DURATION";
  override readonly name = "DurationError";
}

/** Parses Go-style durations ("90s", "5m", "1h30m", "250ms") into milliseconds. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "" || s === "0") {
    if (s === "0") return 0;
    throw new DurationError(`invalid duration "${text}"`);
  }
  let total = 0;
  let rest = s;
  const re = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m?.[1] || !m[2])
      throw new DurationError(`invalid duration "${text}": use forms like 30s, 5m, 1h30m`);
    total += Number(m[1]) * (UNIT_MS[m[2]] ?? 0);
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}
