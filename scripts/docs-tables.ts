// The provider tables of README.md, examples/README.md and docs/deploy.md, rendered from the
// provider definitions (src/providers/registry.ts) between generated-block markers. Shared by
// `npm run gen:docs` and the test that fails when a file is stale.
import { format, resolveConfig } from "prettier";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ProviderDefinition } from "../src/providers/definition.ts";
import { secretKeysText } from "../src/providers/describe.ts";
import type { Capability } from "../src/providers/driver.ts";

type Def = Pick<ProviderDefinition, "provider" | "credentialKeys" | "capabilities" | "docs">;

/** Capabilities in the order the table names them; the rest (findByOwner …) are not actions a user sees. */
const SHOWN: readonly (Capability | "create")[] = [
  "create",
  "start",
  "stop",
  "reboot",
  "resize",
  "rebuild",
  "tags",
];

/** What the operator can do on this provider, in its own words. */
export function actionsText(def: Def): string {
  const has = new Set<string>(["create", ...def.capabilities]);
  return SHOWN.filter((c) => has.has(c))
    .map((c) => def.docs.actions?.[c] ?? c)
    .join(", ");
}

export function providersTable(defs: readonly Def[]): string {
  const rows = defs.map(
    (d) =>
      `| [${d.provider}](docs/providers/${d.provider}.md) | ${secretKeysText(d, "`") || "none"} | ${actionsText(d)} | ${d.docs.notes} |`,
  );
  return [
    "| provider | auth (Secret keys) | what the operator can do | notes |",
    "|---|---|---|---|",
    ...rows,
  ].join("\n");
}

export function secretKeysLine(defs: readonly Def[]): string {
  return `Secret keys per provider: ${defs.map((d) => `${d.provider} ${secretKeysText(d, "`")}`).join("; ")}.`;
}

/** file (relative to the repository) -> block name -> generated text. */
export function renderBlocks(defs: readonly Def[]): Map<string, Map<string, string>> {
  return new Map([
    ["README.md", new Map([["providers-table", providersTable(defs)]])],
    ["examples/README.md", new Map([["secret-keys", secretKeysLine(defs)]])],
    ["docs/deploy.md", new Map([["secret-keys", secretKeysLine(defs)]])],
  ]);
}

const begin = (name: string) => `<!-- generated:${name} (npm run gen:docs; do not edit) -->`;
const END = "<!-- end generated -->";

/** `text` with each named block between its markers replaced; a missing marker is an error. */
export function fillBlocks(file: string, text: string, blocks: ReadonlyMap<string, string>): string {
  let out = text;
  for (const [name, body] of blocks) {
    const start = out.indexOf(begin(name));
    const end = start < 0 ? -1 : out.indexOf(END, start);
    if (start < 0 || end < 0) throw new Error(`${file}: no "${begin(name)}" … "${END}" block`);
    out = `${out.slice(0, start)}${begin(name)}\n${body}\n${out.slice(end)}`;
  }
  return out;
}

/** Every documentation file with its generated blocks brought up to date. */
/**
 * renderDocFiles as the repository keeps them: through the one formatter (prettier), which
 * aligns the tables, so that `npm run format` and `npm run gen:docs` never undo each other.
 */
export async function formattedDocFiles(root: string, defs: readonly Def[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [file, text] of renderDocFiles(root, defs)) {
    const filepath = join(root, file);
    const options = (await resolveConfig(filepath)) ?? {};
    out.set(file, await format(text, { ...options, filepath }));
  }
  return out;
}

export function renderDocFiles(root: string, defs: readonly Def[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [file, blocks] of renderBlocks(defs)) {
    out.set(file, fillBlocks(file, readFileSync(join(root, file), "utf8"), blocks));
  }
  return out;
}
