// `npm run bench -- --scenario=operator-bound --api-server=real`, small: the scenario on a real
// kube-apiserver and etcd, with the writes counted by kube-apiserver itself
// (apiserver_request_total), not by our in-memory server.
import { test } from "node:test";
import { checkOperatorBound } from "../bench/operator-bound-check.ts";
import { SKIP } from "./envtest.ts";

test(
  "operator-bound bench on a real API server: 3 writes and 2 provider calls per instance, as kube-apiserver counts them",
  { skip: SKIP },
  () => {
    checkOperatorBound("real", 40);
  },
);
