// The per-credential limiter lives in the transport core, where the kube client's rate limit
// uses it too; this path stays for the drivers and tests that import it from here.
export { RequestLimiter } from "../../util/transport/limiter.ts";
