import { ConfigError, parseConfig } from "./config.ts";
import { createLogger } from "./observability/logger.ts";
import { clusterIdentity, connectKube, buildOperator, createMetrics } from "./operator.ts";
import { LeaderElectionLostError } from "./controller/manager.ts";

/** Entry point: config -> logger -> kube client -> manager.run(). Exit 2 on bad flags, 1 on failure. */
async function main(): Promise<number> {
  let outcome;
  try {
    outcome = parseConfig(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  if (outcome.kind === "help") {
    process.stdout.write(outcome.text);
    return 0;
  }
  const config = outcome.config;
  const logger = createLogger({ level: config.logLevel });
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.once(sig, () => {
      logger.info({ signal: sig }, "shutdown requested");
      stop.abort();
    });
  }
  let kube;
  let lost = false;
  try {
    kube = await connectKube(config, logger);
    const mgr = buildOperator(config, {
      logger,
      kube,
      metrics: createMetrics(),
      resyncMs: config.resyncPeriodMs,
      instanceTiming: {
        pollInitialMs: config.pollInitialMs,
        pollMaxMs: config.pollMaxMs,
        noProgressLimit: config.noProgressLimit,
      },
      providerLimits: config.providerLimits,
      providerTimeoutMs: config.providerTimeoutMs,
      providerMaxResponseBytes: config.providerMaxResponseBytes,
      providerMaxPages: config.providerMaxPages,
      providerMaxInflightPerAccount: config.providerMaxInflightPerAccount,
      allowedEndpoints: config.allowedEndpoints,
      maxReplicas: config.maxReplicas,
      orphans: config.orphans,
      ...(process.env.POD_NAMESPACE
        ? { operatorPod: { name: config.podName, namespace: process.env.POD_NAMESPACE } }
        : {}),
      clusterID: config.clusterID ?? (await clusterIdentity(kube, logger)),
    });
    await mgr.run(stop.signal);
    return 0;
  } catch (err) {
    // A lost lease exits at once (the Deployment restarts the pod as a standby): requests
    // still in flight to an API server that stopped answering are not waited for.
    if (err instanceof LeaderElectionLostError) lost = true;
    logger.fatal({ err }, "operator failed");
    return 1;
  } finally {
    await kube?.close(lost ? 300 : 5_000);
    // What could still keep the process alive (the shutdown test reads it at debug level).
    logger.debug({ resources: process.getActiveResourcesInfo() }, "stopped");
  }
}

// No process.exit: the manager stops and closes everything it started, and the process ends
// when nothing is left (the shutdown chaos test checks it exits by itself, handles closed).
process.exitCode = await main();
