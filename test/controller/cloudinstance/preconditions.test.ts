import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { CloudInstance } from "../../../src/api/index.ts";
import {
  specRefusal,
  templateRefusal,
  type TemplateFacts,
} from "../../../src/controller/cloudinstance/preconditions.ts";

const spec = (over: Partial<CloudInstance["spec"]> = {}): CloudInstance["spec"] =>
  ({ provider: { name: "m2s" }, ...over }) as CloudInstance["spec"];

describe("specRefusal: combinations refused before any Secret is read", () => {
  const rows: [string, CloudInstance["spec"], string | undefined][] = [
    ["a plain spec is accepted", spec(), undefined],
    [
      "a generated key with a Secret to hold it is accepted",
      spec({ sshKeyGeneration: { type: "ed25519" }, writeConnectionSecretToRef: { name: "conn" } }),
      undefined,
    ],
    [
      "a generated key without a Secret is refused: the private key would be lost",
      spec({ sshKeyGeneration: { type: "ed25519" } }),
      "InvalidSpec",
    ],
  ];
  for (const [name, s, reason] of rows)
    test(name, () => {
      assert.equal(specRefusal(s)?.reason, reason);
    });
});

describe("templateRefusal: an instance waits for its template's remote twin", () => {
  const facts = (over: Partial<TemplateFacts> = {}): TemplateFacts => ({
    spec: { templateProviderData: {} },
    templateName: "web",
    mirrorsTemplates: true,
    provider: "multicloud",
    deleting: false,
    ...over,
  });
  const rows: [string, Partial<TemplateFacts>, boolean][] = [
    ["a mirrored template without its remote id yet: wait", {}, true],
    ["the remote id is known: go on", { spec: { templateProviderData: { templateId: "t-1" } } }, false],
    ["a provider without remote templates never waits", { mirrorsTemplates: false }, false],
    ["an instance without a template never waits", { templateName: undefined }, false],
    ["a deletion never waits: nothing is created from the template", { deleting: true }, false],
  ];
  for (const [name, over, waits] of rows)
    test(name, () => {
      const r = templateRefusal(facts(over));
      assert.equal(r?.reason, waits ? "TemplateNotReady" : undefined);
      if (r) assert.match(r.message, /InstanceTemplate "web" has no remote template at multicloud/);
    });
});
