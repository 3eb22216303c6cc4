// Every script answers --help (and -h) with its usage and does nothing else: running a
// generator or the demo to learn what it does must not write files or start processes.

/** Prints `usage` and exits 0 when the command line asks for help; call it before any work. */
export function helpAndExit(usage: string, argv: readonly string[] = process.argv.slice(2)): void {
  if (!argv.includes("--help") && !argv.includes("-h")) return;
  process.stdout.write(usage.endsWith("\n") ? usage : `${usage}\n`);
  process.exit(0);
}
