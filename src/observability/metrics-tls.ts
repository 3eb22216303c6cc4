import { readFileSync } from "node:fs";
import { join } from "node:path";
import { selfSignedCertificate } from "./self-signed.ts";

/**
 * The metrics endpoint's certificate: the mounted one (cert-manager, the chart's Secret) when
 * a folder is given, read once at start; otherwise one made in memory for this process.
 */
export function metricsCertificate(certDir: string | undefined): { cert: string; key: string } {
  if (certDir !== undefined)
    return {
      cert: readFileSync(join(certDir, "tls.crt"), "utf8"),
      key: readFileSync(join(certDir, "tls.key"), "utf8"),
    };
  return selfSignedCertificate({
    commonName: "cloud-instance-operator-metrics",
    dnsNames: ["localhost", ...(process.env.POD_NAMESPACE ? [`*.${process.env.POD_NAMESPACE}.svc`] : [])],
  });
}
