import { test } from "node:test";
import assert from "node:assert/strict";
import {
  canonicalQuery,
  rfc3986,
  signature,
  signedHost,
  stringToSign,
} from "../../../src/providers/mos/signer.ts";

// The published AWS Signature Version 2 example (providers/README.md).
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const PARAMS: [string, string][] = [
  ["Action", "DescribeJobFlows"],
  ["Version", "2009-03-31"],
  ["AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE"],
  ["SignatureVersion", "2"],
  ["SignatureMethod", "HmacSHA256"],
  ["Timestamp", "2011-10-03T15:19:30"],
];
const URL_ = new URL("https://elasticmapreduce.amazonaws.com/");

test("the published vector: GET", () => {
  const text = stringToSign("GET", URL_, PARAMS);
  assert.equal(
    text,
    "GET\nelasticmapreduce.amazonaws.com\n/\nAWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=DescribeJobFlows&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2011-10-03T15%3A19%3A30&Version=2009-03-31",
  );
  assert.equal(signature(SECRET, "HmacSHA256", text), "i91nKc4PWAt0JJIdXwz9HxZCJDdiy6cf/Mj6vPxyYIs=");
});

test("the published vector: POST", () => {
  const text = stringToSign("POST", URL_, PARAMS);
  assert.equal(signature(SECRET, "HmacSHA256", text), "wseguMzBRgA/4/fan8ZwEa0PIF+ws4WFbTJcG1ts5RY=");
});

test("RFC 3986 encoding: unreserved kept, everything else upper-case %XX, space %20", () => {
  assert.equal(rfc3986("A-Z_a.z~0"), "A-Z_a.z~0");
  assert.equal(rfc3986("a b"), "a%20b");
  assert.equal(rfc3986("*"), "%2A");
  assert.equal(rfc3986("+"), "%2B");
  assert.equal(rfc3986("/"), "%2F");
  assert.equal(rfc3986("!'()"), "%21%27%28%29");
  assert.equal(rfc3986("é"), "%C3%A9");
  assert.equal(rfc3986("美团"), "%E7%BE%8E%E5%9B%A2");
});

test("parameters sort by encoded name in byte order; Signature is left out", () => {
  assert.equal(
    canonicalQuery([
      ["b", "2"],
      ["B", "1"],
      ["a.1", "x y"],
      ["Signature", "zzz"],
      ["a", "~*"],
    ]),
    "B=1&a=~%2A&a.1=x%20y&b=2",
  );
});

test("host: lower case, port only when not the default", () => {
  assert.equal(signedHost(new URL("https://MOS-API.Meituan.com/")), "mos-api.meituan.com");
  assert.equal(signedHost(new URL("https://mos-api.meituan.com:443/")), "mos-api.meituan.com");
  assert.equal(signedHost(new URL("http://127.0.0.1:80/")), "127.0.0.1");
  assert.equal(signedHost(new URL("https://10.168.44.160:8883/")), "10.168.44.160:8883");
  assert.equal(signedHost(new URL("http://localhost:8883/")), "localhost:8883");
});

test("HmacSHA1 differs from HmacSHA256 and an empty path signs as /", () => {
  const text = stringToSign("GET", new URL("https://h.example"), [["Action", "GetBalance"]]);
  assert.equal(text, "GET\nh.example\n/\nAction=GetBalance");
  assert.notEqual(signature("k", "HmacSHA1", text), signature("k", "HmacSHA256", text));
  assert.equal(signature("k", "HmacSHA1", text).length, 28);
});
