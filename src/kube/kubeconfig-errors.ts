/** A kubeconfig that cannot be used: named so the operator's startup error says what to fix. */
export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
  readonly code = "ERR_KUBE_CONFIG";
}

export function configError(message: string, cause?: unknown): never {
  throw new KubeConfigError(
    `cannot load Kubernetes config: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}
