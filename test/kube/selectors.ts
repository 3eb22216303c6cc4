/** Kubernetes label selector matching: =, ==, !=, in, notin, exists, !key. */
export type LabelPredicate = (labels: Record<string, string> | undefined) => boolean;

export class SelectorError extends Error {
  readonly code = "ERR_BAD_SELECTOR";
  override readonly name = "SelectorError";
}

function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur.trim() !== "") parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

export function parseLabelSelector(selector: string | null | undefined): LabelPredicate {
  if (!selector) return () => true;
  const terms = splitTop(selector).map((term): LabelPredicate => {
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m?.[1] && m[2] && m[3] !== undefined) {
      const key = m[1];
      const values = new Set(m[3].split(",").map((v) => v.trim()));
      return m[2] === "in"
        ? (l) => l?.[key] !== undefined && values.has(l[key])
        : (l) => l?.[key] === undefined || !values.has(l[key]);
    }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term);
    if (m?.[1] && m[2]) {
      const key = m[1];
      const value = m[3] ?? "";
      return m[2] === "!=" ? (l) => l?.[key] !== value : (l) => l?.[key] === value;
    }
    m = /^!([\w./-]+)$/.exec(term);
    if (m?.[1]) {
      const key = m[1];
      return (l) => l?.[key] === undefined;
    }
    m = /^([\w./-]+)$/.exec(term);
    if (m?.[1]) {
      const key = m[1];
      return (l) => l?.[key] !== undefined;
    }
    throw new SelectorError(`unable to parse requirement: ${term}`);
  });
  return (labels) => terms.every((t) => t(labels));
}

/** Field selectors: metadata.name and metadata.namespace (= == !=). */
export function parseFieldSelector(
  selector: string | null | undefined,
): (obj: { metadata: { name?: string | undefined; namespace?: string | undefined } }) => boolean {
  if (!selector) return () => true;
  const terms = splitTop(selector).map((term) => {
    const m = /^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m?.[1] || !m[2]) throw new SelectorError(`field label not supported: ${term}`);
    const field = m[1] === "metadata.name" ? "name" : "namespace";
    const value = m[3] ?? "";
    const neg = m[2] === "!=";
    return (o: { metadata: { name?: string | undefined; namespace?: string | undefined } }) =>
      (o.metadata[field] === value) !== neg;
  });
  return (o) => terms.every((t) => t(o));
}
