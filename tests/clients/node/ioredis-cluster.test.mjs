// ioredis Cluster against a 3-node damselfly cluster formed by cluster-admin.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import Redis from "ioredis";
import { admin, clusterClient, startCluster, stopCluster, waitFor } from "./helpers.mjs";

let nodes = [];
let cluster;

before(async () => {
  nodes = await startCluster(3);
  cluster = await clusterClient(nodes);
});

after(async () => {
  if (cluster) cluster.disconnect();
  await stopCluster(nodes);
});

test("the client sees every node and slot", async () => {
  const slots = await cluster.cluster("SLOTS");
  assert.equal(slots.length, 3);
  assert.equal(slots.reduce((n, [a, b]) => n + b - a + 1, 0), 16384);
  assert.equal(cluster.nodes("master").length, 3);
});

test("strings spread over every node", async () => {
  for (let i = 0; i < 200; i++) await cluster.set(`s:${i}`, String(i));
  for (let i = 0; i < 200; i++) assert.equal(await cluster.get(`s:${i}`), String(i));
  assert.equal(await cluster.incrby("s:7", 5), 12);
  const sizes = await Promise.all(cluster.nodes("master").map((n) => n.dbsize()));
  assert.ok(sizes.every((s) => s > 0), `keys on every node: ${sizes}`);
  assert.equal(await cluster.mset("{u1}a", "1", "{u1}b", "2"), "OK");
  assert.deepEqual(await cluster.mget("{u1}a", "{u1}b"), ["1", "2"]);
  await assert.rejects(cluster.mget("s:1", "s:2"), /CROSSSLOT/);
});

test("hashes", async () => {
  for (let i = 0; i < 30; i++) await cluster.hset(`h:${i}`, { user: `u${i}`, total: i });
  assert.deepEqual(await cluster.hgetall("h:4"), { user: "u4", total: "4" });
  assert.equal(await cluster.hincrby("h:4", "total", 6), 10);
});

test("sorted sets", async () => {
  for (let u = 0; u < 10; u++) {
    const key = `rank:{u${u}}`;
    await cluster.zadd(key, 3, "books", 1, "games", 2, "music");
    await cluster.zincrby(key, 5, "games");
    assert.deepEqual(await cluster.zrevrange(key, 0, -1, "WITHSCORES"), ["games", "6", "books", "3", "music", "2"]);
  }
});

test("pipelines (one per hash tag) and MULTI within one slot", async () => {
  // ioredis Cluster pipelines must stay in one slot: one per hash tag.
  for (let u = 0; u < 10; u++) {
    const p = cluster.pipeline();
    for (let i = 0; i < 20; i++) p.set(`{p${u}}:${i}`, i).incr(`{p${u}}:${i}`);
    const res = await p.exec();
    assert.ok(res.every(([err]) => err === null));
    assert.deepEqual(res.filter((_, j) => j % 2).map(([, v]) => v), Array.from({ length: 20 }, (_, i) => i + 1));
  }
  const res = await cluster.multi().set("{tx}a", "1").incr("{tx}a").get("{tx}a").exec();
  assert.deepEqual(res, [[null, "OK"], [null, 2], [null, "2"]]);
});

test("defineCommand scripts with hash-tagged keys", async () => {
  cluster.defineCommand("transfer", {
    numberOfKeys: 2,
    lua: `local have = tonumber(redis.call('GET', KEYS[1]) or '0')
          if have < tonumber(ARGV[1]) then return -1 end
          redis.call('DECRBY', KEYS[1], ARGV[1])
          return redis.call('INCRBY', KEYS[2], ARGV[1])`,
  });
  for (let u = 0; u < 10; u++) {
    await cluster.set(`{a${u}}:from`, 100);
    assert.equal(await cluster.transfer(`{a${u}}:from`, `{a${u}}:to`, 70), 70);
    assert.equal(await cluster.transfer(`{a${u}}:from`, `{a${u}}:to`, 70), -1);
    assert.deepEqual(await cluster.mget(`{a${u}}:from`, `{a${u}}:to`), ["30", "70"]);
  }
});

/** The client port of `slot`'s owner as `node` sees it (CLUSTER SLOTS). */
async function ownerSeenBy(node, slot) {
  const direct = new Redis({ host: "127.0.0.1", port: node.port, lazyConnect: true });
  try {
    const slots = await direct.cluster("SLOTS");
    const range = slots.find(([a, b]) => a <= slot && slot <= b);
    return range ? Number(range[2][1]) : null;
  } finally {
    direct.disconnect();
  }
}

test("topology refresh after cluster-admin assign-slots moves a slot", async () => {
  // Slot moves do not carry data yet: move a slot that holds no keys.
  const key = "moving-key";
  const slot = await cluster.cluster("KEYSLOT", key);
  assert.equal(await cluster.cluster("COUNTKEYSINSLOT", slot), 0);
  await cluster.get(key); // the client's map points at the old owner
  const oldPort = Number(cluster.slots[slot][0].split(":")[1]);
  const target = nodes.find((n) => n.port !== oldPort);
  await admin(nodes, "assign-slots", target.addr, String(slot));
  await waitFor("every node to see the new owner", 20_000, async () =>
    (await Promise.all(nodes.map((n) => ownerSeenBy(n, slot)))).every((p) => p === target.port));
  // The old owner answers MOVED; the client follows it and refreshes its map.
  assert.equal(await cluster.set(key, "after-move"), "OK");
  assert.equal(await cluster.get(key), "after-move");
  await waitFor("the client's slot map to follow", 10_000, () => cluster.slots[slot][0] === target.addr);
  await cluster.del(key);
  await admin(nodes, "assign-slots", `127.0.0.1:${oldPort}`, String(slot));
  await waitFor("every node to see the slot back", 20_000, async () =>
    (await Promise.all(nodes.map((n) => ownerSeenBy(n, slot)))).every((p) => p === oldPort));
  assert.equal(await cluster.set(key, "back"), "OK");
  assert.equal(await cluster.get(key), "back");
  await waitFor("the client's slot map to follow back", 10_000, () => cluster.slots[slot][0] === `127.0.0.1:${oldPort}`);
});
