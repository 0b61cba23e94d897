// node-redis (@redis/client with the @redis/json module) for JSON commands.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@redis/client";
import json from "@redis/json";

// a CommonJS package: its ES default export is module.exports
const RedisJSON = json.default;
import { Node } from "./helpers.mjs";

let node;
let client;

before(async () => {
  node = await new Node().start();
  client = createClient({ url: `redis://127.0.0.1:${node.port}`, modules: { json: RedisJSON } });
  client.on("error", () => {});
  await client.connect();
});

after(async () => {
  await client.close();
  await node.kill();
});

test("JSON documents", async () => {
  const order = { user: 42, items: [{ sku: "a", qty: 2 }], total: 59.9, paid: false };
  assert.equal(await client.json.set("order:1", "$", order), "OK");
  assert.deepEqual(await client.json.get("order:1"), order);
  assert.deepEqual(await client.json.get("order:1", { path: "$.items[0].qty" }), [2]);
  assert.equal(await client.json.set("order:1", "$.paid", true), "OK");
  assert.deepEqual(await client.json.numIncrBy("order:1", "$.items[0].qty", 3), [5]);
  assert.deepEqual(await client.json.arrAppend("order:1", "$.items", { sku: "b", qty: 1 }), [2]);
  assert.deepEqual(await client.json.arrLen("order:1", { path: "$.items" }), [2]);
  assert.deepEqual(await client.json.type("order:1", { path: "$.total" }), ["number"]);
  assert.equal(await client.json.del("order:1", { path: "$.total" }), 1);
  assert.deepEqual(await client.json.get("order:1"), {
    user: 42,
    items: [
      { sku: "a", qty: 5 },
      { sku: "b", qty: 1 },
    ],
    paid: true,
  });
  await client.json.set("order:2", "$", { user: 7 });
  assert.deepEqual(await client.json.mGet(["order:1", "order:2"], "$.user"), [[42], [7]]);
  assert.equal(await client.json.set("order:2", "$", { user: 8 }, { condition: "NX" }), null);
});

test("JSON in a transaction with other commands", async () => {
  const replies = await client
    .multi()
    .json.set("cart:9", "$", { items: [] })
    .json.arrAppend("cart:9", "$.items", "sku-1", "sku-2")
    .expire("cart:9", 600)
    .json.get("cart:9")
    .exec();
  assert.deepEqual(replies, ["OK", [2], 1, { items: ["sku-1", "sku-2"] }]);
  const ttl = await client.ttl("cart:9");
  assert.ok(ttl > 0 && ttl <= 600);
});
