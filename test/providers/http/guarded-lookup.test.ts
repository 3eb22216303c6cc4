import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { LookupAddress } from "node:dns";
import { captureLogs } from "../harness.ts";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { guardedLookup, ResolvedAddressNotAllowedError } from "../../../src/providers/http/guarded-lookup.ts";
import { EndpointPolicy } from "../../../src/providers/endpoint-policy.ts";
import { EndpointRefusedError } from "../../../src/providers/errors.ts";

const DEFAULTS = ["https://api.m2s.cloud/v1"];

describe("a provider connection to a host name that resolves to an internal address", () => {
  let server: Server;
  let port: number;
  let requests = 0;
  const { logger } = captureLogs();

  before(async () => {
    server = createServer((_req, res) => {
      requests++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.close();
  });

  const call = async (policy: EndpointPolicy): Promise<unknown> => {
    const factory = new HttpClientFactory({ logger, resolvedAddresses: policy });
    try {
      return await factory
        .client({
          provider: "test",
          baseUrl: `http://localhost:${String(port)}/v1`,
          credentialKey: "k",
          secrets: [],
        })
        .request({ method: "GET", path: "/instances", operation: "list" });
    } finally {
      await factory.close();
    }
  };

  test("is refused before a byte is sent when no allow-list entry names that host", async () => {
    // In the operator the name first passed the endpoint policy (a wildcard entry, a driver
    // default); the factory's connection-time check is what this exercises.
    const before = requests;
    const policy = new EndpointPolicy([], DEFAULTS);
    await assert.rejects(call(policy), (err: unknown) => {
      assert.ok(err instanceof EndpointRefusedError, String(err));
      assert.equal(err.reason, "EndpointNotAllowed");
      assert.equal(err.terminal, true);
      assert.match(err.message, /localhost resolves to the internal address 127\.0\.0\.1/);
      return true;
    });
    assert.equal(requests, before, "the listener got no request");
  });

  test("goes through when an --allowed-endpoints entry names that very host", async () => {
    const before = requests;
    await call(new EndpointPolicy([`http://localhost:${String(port)}`], DEFAULTS));
    assert.equal(requests, before + 1);
  });
});

describe("guardedLookup", () => {
  const resolver =
    (addresses: LookupAddress[]) =>
    (_h: string, _o: unknown, cb: (e: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) => {
      cb(null, addresses);
    };
  const lookupWith = (addresses: LookupAddress[], allowed: boolean) =>
    guardedLookup({ internalAllowed: () => allowed }, resolver(addresses));

  test("any internal address among several refuses the host, whichever comes first (happy eyeballs may try any)", async () => {
    const lookup = lookupWith(
      [
        { address: "203.0.113.7", family: 4 },
        { address: "169.254.169.254", family: 4 },
      ],
      false,
    );
    const err = await new Promise<unknown>((resolve) => {
      lookup("api.example.com", { all: true }, (e) => {
        resolve(e);
      });
    });
    assert.ok(err instanceof ResolvedAddressNotAllowedError);
    assert.equal(err.address, "169.254.169.254");
  });

  test("public addresses pass, in the shape the caller asked for (one, or all)", async () => {
    const lookup = lookupWith(
      [
        { address: "2001:db8::1", family: 6 },
        { address: "203.0.113.7", family: 4 },
      ],
      false,
    );
    const one = await new Promise<[unknown, unknown, unknown]>((resolve) => {
      lookup("api.example.com", {}, (e, a, f) => {
        resolve([e, a, f]);
      });
    });
    assert.deepEqual(one, [null, "2001:db8::1", 6]);
    const all = await new Promise<unknown>((resolve) => {
      lookup("api.example.com", { all: true }, (_e, a) => {
        resolve(a);
      });
    });
    assert.equal((all as LookupAddress[]).length, 2);
  });

  test("an internal address passes where the policy allows it for the host", async () => {
    const lookup = lookupWith([{ address: "10.0.0.5", family: 4 }], true);
    const one = await new Promise<unknown[]>((resolve) => {
      lookup("m2s.corp.example", {}, (e, a) => {
        resolve([e, a]);
      });
    });
    assert.deepEqual(one, [null, "10.0.0.5"]);
  });
});
