// ioredis's Redis client against one damselfly process: the core flows.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import Redis from "ioredis";
import { Node, requireCommand } from "./helpers.mjs";

let node;
let redis;
const call = (args) => redis.call(...args);

before(async () => {
  node = await new Node().start();
  redis = new Redis({ host: "127.0.0.1", port: node.port, lazyConnect: true });
  await redis.connect();
});

after(async () => {
  redis.disconnect();
  await node.kill();
});

beforeEach(async () => {
  await redis.flushall();
});

test("strings", async () => {
  assert.equal(await redis.set("greeting", "hello"), "OK");
  assert.equal(await redis.get("greeting"), "hello");
  assert.equal(await redis.append("greeting", " world"), 11);
  assert.equal(await redis.set("greeting", "x", "NX"), null);
  assert.equal(await redis.incr("n"), 1);
  assert.equal(await redis.incrby("n", 41), 42);
  assert.equal(await redis.decr("n"), 41);
  assert.equal(await redis.incrbyfloat("f", "1.5"), "1.5");
  assert.equal(await redis.mset({ a: "1", b: "2" }), "OK");
  assert.deepEqual(await redis.mget("a", "b", "nope"), ["1", "2", null]);
  assert.equal(await redis.set("s", "v", "EX", 100), "OK");
  const ttl = await redis.ttl("s");
  assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
  const buf = Buffer.from([0, 1, 2, 255, 254]);
  await redis.set("bin", buf);
  assert.deepEqual(await redis.getBuffer("bin"), buf);
  assert.equal(await redis.del("a", "b", "nope"), 2);
});

test("keys and scanStream", async () => {
  const pipe = redis.pipeline();
  for (let i = 0; i < 300; i++) pipe.set(`user:${i}`, i);
  await pipe.exec();
  const seen = [];
  for await (const batch of redis.scanStream({ match: "user:*", count: 50 })) seen.push(...batch);
  assert.equal(new Set(seen).size, 300);
  assert.equal(await redis.type("user:1"), "string");
  assert.equal(await redis.dbsize(), 300);
});

test("hashes", async () => {
  assert.equal(await redis.hset("order:1", { user: "42", total: "59.90", status: "new" }), 3);
  assert.equal(await redis.hset("order:1", "status", "paid"), 0);
  assert.deepEqual(await redis.hgetall("order:1"), { user: "42", total: "59.90", status: "paid" });
  assert.deepEqual(await redis.hmget("order:1", "user", "nope"), ["42", null]);
  assert.equal(await redis.hincrby("order:1", "items", 3), 3);
  assert.equal(await redis.hexists("order:1", "user"), 1);
  assert.equal(await redis.hdel("order:1", "user"), 1);
  assert.deepEqual((await redis.hkeys("order:1")).sort(), ["items", "status", "total"]);
});

test("pipeline: replies and errors in order", async () => {
  await redis.set("text", "abc");
  const pipe = redis.pipeline();
  for (let i = 0; i < 100; i++) pipe.set(`k${i}`, i);
  pipe.incr("text").get("k99").hset("h", "f", "v").get("nope");
  const results = await pipe.exec();
  assert.equal(results.length, 104);
  assert.ok(results.slice(0, 100).every(([err, r]) => err === null && r === "OK"));
  assert.match(results[100][0].message, /ERR/);
  assert.deepEqual(results.slice(101), [[null, "99"], [null, 1], [null, null]]);
});

test("multi/exec", async () => {
  const results = await redis.multi().set("balance", 100).decrby("balance", 30).get("balance").exec();
  assert.deepEqual(results, [[null, "OK"], [null, 70], [null, "70"]]);
});

test("watch aborts a transaction on a concurrent write", async () => {
  const other = new Redis({ host: "127.0.0.1", port: node.port });
  try {
    await redis.set("stock", 10);
    await redis.watch("stock");
    const stock = Number(await redis.get("stock"));
    await other.decr("stock");
    assert.equal(await redis.multi().set("stock", stock - 1).exec(), null);
    assert.equal(await redis.get("stock"), "9");
    // retry: no concurrent write this time
    await redis.watch("stock");
    const again = Number(await redis.get("stock"));
    assert.deepEqual(await redis.multi().set("stock", again - 1).exec(), [[null, "OK"]]);
    assert.equal(await redis.get("stock"), "8");
  } finally {
    other.disconnect();
  }
});

test("scripts via defineCommand", async (t) => {
  if (!(await requireCommand(t, call, "eval", "scripting"))) return;
  redis.defineCommand("addTo", {
    numberOfKeys: 1,
    lua: "return redis.call('INCRBY', KEYS[1], ARGV[1])",
  });
  assert.equal(await redis.addTo("n", 5), 5);
  await redis.script("FLUSH"); // ioredis reloads it on NOSCRIPT
  assert.equal(await redis.addTo("n", 2), 7);
  const results = await redis.pipeline().addTo("n", 1).addTo("n", 1).exec();
  assert.deepEqual(results, [[null, 8], [null, 9]]);
});

test("sorted sets", async (t) => {
  if (!(await requireCommand(t, call, "zadd", "sorted sets"))) return;
  assert.equal(await redis.zadd("board", 10, "ann", 20, "bob", 15, "cid"), 3);
  assert.equal(await redis.zincrby("board", 7, "ann"), "17");
  assert.deepEqual(await redis.zrevrange("board", 0, -1, "WITHSCORES"), ["bob", "20", "ann", "17", "cid", "15"]);
  assert.equal(await redis.zscore("board", "cid"), "15");
  assert.equal(await redis.zrank("board", "bob"), 2);
  assert.deepEqual(await redis.zrangebyscore("board", 16, 20), ["ann", "bob"]);
  assert.equal(await redis.zrem("board", "cid"), 1);
  assert.equal(await redis.zcard("board"), 2);
});
