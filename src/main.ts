import { ConfigError, parseConfig } from "./config.ts";
import { createLogger } from "./observability/logger.ts";
import { clusterIdentity, connectKube, buildOperator, createMetrics } from "./operator.ts";

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
      allowedEndpoints: config.allowedEndpoints,
      maxReplicas: config.maxReplicas,
      clusterID: config.clusterID ?? (await clusterIdentity(kube, logger)),
    });
    await mgr.run(stop.signal);
    return 0;
  } catch (err) {
    logger.fatal({ err }, "operator failed");
    return 1;
  } finally {
    await kube?.close();
  }
}

// Exit explicitly: nothing the operator started may keep a stopped process alive.
process.exit(await main());
