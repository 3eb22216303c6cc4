// `npm run test:real` (and the tail of `npm test`): the real-server suite when KUBEBUILDER_ASSETS
// names an envtest folder, else one line saying how to get one. Extra arguments go to node --test.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ASSETS, SKIP } from "./envtest.ts";

if (process.argv.includes("--help")) {
  process.stdout.write(
    [
      "Usage: npm run test:real [-- <node --test options>]",
      "",
      "Runs test/real/*.test.ts against a real kube-apiserver and etcd from KUBEBUILDER_ASSETS",
      "(scripts/envtest/assets.sh builds them); without it, prints why the suite is skipped and exits 0.",
      "Extra arguments go to node --test, e.g. --test-name-pattern=shard.",
      "",
    ].join("\n"),
  );
  process.exit(0);
}
if (!ASSETS) {
  process.stdout.write(`real API server tests skipped: ${SKIP || ""}\n`);
  process.exit(0);
}
for (const bin of ["kube-apiserver", "etcd"])
  if (!existsSync(join(ASSETS, bin))) {
    process.stderr.write(`KUBEBUILDER_ASSETS=${ASSETS} has no ${bin}: run scripts/envtest/assets.sh\n`);
    process.exit(1);
  }
const res = spawnSync(
  process.execPath,
  [
    "--test",
    "--test-concurrency=2",
    "--test-timeout=300000",
    ...process.argv.slice(2),
    join(import.meta.dirname, "*.test.ts"),
  ],
  { stdio: "inherit" },
);
process.exit(res.status ?? 1);
