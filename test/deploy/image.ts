import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "../..");

export interface Instruction {
  op: string;
  args: string;
}
export interface Stage {
  from: string;
  name?: string;
  body: Instruction[];
}

/** Dockerfile instructions grouped by stage (line continuations joined, comments dropped). */
export function dockerfileStages(): Stage[] {
  const text = readFileSync(join(root, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const result: Stage[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m || line.trimStart().startsWith("#")) continue;
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === "FROM") {
      const [from, as, name] = args.split(/\s+/);
      result.push({ from: from!, ...(as?.toUpperCase() === "AS" && name ? { name } : {}), body: [] });
    } else result.at(-1)?.body.push({ op, args });
  }
  return result;
}

/** How the image starts its process: the final stage's ENV and exec-form ENTRYPOINT. */
export interface ImageRuntime {
  /** ENV of the final stage (`ENV K=V K="V W"`). */
  env: Record<string, string>;
  /** ENTRYPOINT ["node", ...nodeArgs, "dist/main.js"], or null when not in exec form. */
  entrypoint: string[] | null;
  /** Node's own flags between "node" and the script. */
  nodeArgs: string[];
}

export function imageRuntime(stages: Stage[] = dockerfileStages()): ImageRuntime {
  const body = stages.at(-1)?.body ?? [];
  const env = Object.fromEntries(
    body
      .filter((i) => i.op === "ENV")
      .flatMap((i) => i.args.match(/\S+?=(?:"[^"]*"|\S+)/g) ?? [])
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1).replace(/^"|"$/g, "")] as const),
  );
  const raw = body.filter((i) => i.op === "ENTRYPOINT").at(-1)?.args ?? "";
  const entrypoint = raw.startsWith("[") ? (JSON.parse(raw) as string[]) : null;
  return { env, entrypoint, nodeArgs: entrypoint?.slice(1, -1) ?? [] };
}

export interface BuiltDist {
  /** Directory holding the emitted files; `main.js` is the image's ENTRYPOINT. */
  dir: string;
  remove(): void;
}

/**
 * Runs the Dockerfile's build-stage command (tsc -p tsconfig.build.json) into a scratch outDir
 * inside node_modules, so the emitted files resolve the project's dependencies as dist/ does in
 * the image. Throws with tsc's output when the build fails.
 */
export function buildDist(prefix: string): BuiltDist {
  mkdirSync(join(root, "node_modules", ".cache"), { recursive: true });
  const dir = mkdtempSync(join(root, "node_modules", ".cache", prefix));
  const tsc = spawnSync(
    process.execPath,
    [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", dir],
    { cwd: root, encoding: "utf8" },
  );
  if (tsc.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  }
  // The image copies package.json next to dist/ for "type": "module".
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
