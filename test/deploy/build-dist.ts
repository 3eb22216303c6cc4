import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "../..");

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
