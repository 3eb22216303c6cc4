// Source files over ~400 lines and functions over ~80 lines in src/ (issue #23's limits).
// `node scripts/size-check.ts` prints them; test/size.test.ts fails on any.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { helpAndExit } from "./cli-help.ts";

export const FILE_LIMIT = 400;
export const FUNCTION_LIMIT = 80;

export interface Offender {
  /** `path` for a file, `path: name` for a function. */
  where: string;
  lines: number;
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return `${node.parent.name?.getText(sf) ?? "class"}.constructor`;
  const named = node as { name?: ts.Node };
  if (named.name !== undefined) return named.name.getText(sf);
  const parent = node.parent as { name?: ts.Node } | undefined;
  if (parent?.name !== undefined) return parent.name.getText(sf);
  return `<anonymous@${String(sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1)}>`;
}

/** Every file and function of `root/src` over the limits, largest first. */
export function offenders(root: string): Offender[] {
  const out: Offender[] = [];
  for (const path of sourceFiles(join(root, "src"))) {
    const text = readFileSync(path, "utf8");
    const rel = relative(root, path);
    const fileLines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    if (fileLines > FILE_LIMIT) out.push({ where: rel, lines: fileLines });
    const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
        const lines = end - start + 1;
        if (lines > FUNCTION_LIMIT) out.push({ where: `${rel}: ${nameOf(node, sf)}`, lines });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out.sort((a, b) => b.lines - a.lines);
}

if (import.meta.main) {
  helpAndExit(
    `Usage: node scripts/size-check.ts\n\nLists the files in src/ over ${String(FILE_LIMIT)} lines and the functions over ${String(FUNCTION_LIMIT)} (test/size.test.ts fails on any).`,
  );
  const found = offenders(join(import.meta.dirname, ".."));
  for (const o of found) console.log(`${String(o.lines).padStart(5)}  ${o.where}`);
  console.log(found.length === 0 ? "no offenders" : `${String(found.length)} over the limits`);
}
