import { registerHooks } from "node:module";
import type { KubeConfig } from "@kubernetes/client-node";

/**
 * @kubernetes/client-node's KubeConfig, loaded without the package's generated API.
 *
 * Its config module imports `./gen/index.js` — every model and API class of Kubernetes, about
 * 50 MB of resident memory measured (more than the cache of 10,000 objects) — for
 * `makeApiClient` alone, which this operator never calls: it sends its requests through its
 * own pooled transport. A resolve hook, active only while the module loads, hands that one
 * import a two-export stand-in; everything else (parsing, in-cluster config, TLS material,
 * OIDC, the Authenticator interface) is the library's own code. If a later version of the
 * library stops importing that path, the hook simply matches nothing: memory grows, nothing
 * breaks. test/kube/client-node.test.ts checks that the generated API stays unloaded.
 */
const GENERATED_API_STAND_IN = `data:text/javascript,${encodeURIComponent(
  [
    "const unused = () => { throw new Error('client-node makeApiClient is not available in cloud-instance-operator: requests go through src/kube/client.ts'); };",
    "export const createConfiguration = unused;",
    "export class ServerConfiguration { constructor() { unused(); } }",
  ].join("\n"),
)}`;
const CONFIG_MODULE = "/@kubernetes/client-node/dist/config.js";

export interface ClientNode {
  KubeConfig: typeof KubeConfig;
}

let loading: Promise<ClientNode> | undefined;

/** The library's config module, imported once, on first use. */
export function clientNode(): Promise<ClientNode> {
  loading ??= load();
  return loading;
}

async function load(): Promise<ClientNode> {
  const hooks = registerHooks({
    resolve(specifier, context, next) {
      if (specifier === "./gen/index.js" && context.parentURL?.endsWith(CONFIG_MODULE) === true)
        return { url: GENERATED_API_STAND_IN, shortCircuit: true };
      return next(specifier, context);
    },
  });
  try {
    const config = await import("@kubernetes/client-node/dist/config.js");
    return { KubeConfig: config.KubeConfig };
  } finally {
    hooks.deregister();
  }
}
