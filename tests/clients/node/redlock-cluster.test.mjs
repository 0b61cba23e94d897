// node-redlock v5 with one ioredis Cluster client: the whole cluster is one
// vote (a RedLock majority needs independent primaries; see README.md).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import Redlock, { ExecutionError, Lock } from "redlock";
import { clusterClient, startCluster, stopCluster } from "./helpers.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PATIENT = { retryCount: 400, retryDelay: 50, retryJitter: 25 };

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

test("mutual exclusion: 20 async contenders, no lost updates", async () => {
  const redlock = new Redlock([cluster], PATIENT);
  await cluster.set("counter", 0);
  let inside = 0;
  let mostInside = 0;
  const contender = async () => {
    for (let round = 0; round < 3; round++) {
      const lock = await redlock.acquire(["counter-lock"], 10_000);
      try {
        inside++;
        mostInside = Math.max(mostInside, inside);
        const value = Number(await cluster.get("counter"));
        await sleep(1);
        await cluster.set("counter", value + 1);
        inside--;
      } finally {
        await lock.release();
      }
    }
  };
  await Promise.all(Array.from({ length: 20 }, contender));
  assert.equal(mostInside, 1);
  assert.equal(await cluster.get("counter"), "60");
});

test("locks on keys owned by every node", async () => {
  const redlock = new Redlock([cluster], { retryCount: 0 });
  const masters = cluster.nodes("master");
  const owners = new Set();
  for (let i = 0; owners.size < masters.length && i < 100; i++) {
    const key = `res:${i}`;
    const lock = await redlock.acquire([key], 10_000);
    assert.equal(await cluster.get(key), lock.value);
    // the other nodes answer MOVED
    const held = await Promise.all(masters.map((m) => m.get(key).catch(() => null)));
    owners.add(held.findIndex((v) => v === lock.value));
    await lock.release();
    assert.equal(await cluster.get(key), null);
  }
  assert.deepEqual([...owners].sort(), masters.map((_, i) => i));
});

test("extension, release by the owner only, using()", async () => {
  const redlock = new Redlock([cluster], { retryCount: 0 });
  let lock = await redlock.acquire(["ext"], 1000);
  await sleep(600);
  lock = await lock.extend(1000);
  await sleep(600); // past the first lease
  await assert.rejects(redlock.acquire(["ext"], 1000), ExecutionError);
  const impostor = new Lock(redlock, ["ext"], "not-the-owner", [], Date.now() + 10_000);
  await assert.rejects(redlock.release(impostor), ExecutionError);
  assert.equal(await cluster.get("ext"), lock.value);
  await lock.release();
  assert.equal(await cluster.get("ext"), null);
  const seen = await redlock.using(["ext"], 500, { automaticExtensionThreshold: 200 }, async (signal) => {
    await sleep(800); // longer than the lease: extended automatically
    assert.equal(signal.aborted, false);
    return cluster.pttl("ext");
  });
  assert.ok(seen > 0);
});

test("a lock expires after its lease", async () => {
  const redlock = new Redlock([cluster], { retryCount: 0 });
  await redlock.acquire(["lease"], 300);
  await assert.rejects(redlock.acquire(["lease"], 300), ExecutionError);
  await sleep(500);
  const next = await redlock.acquire(["lease"], 300);
  await next.release();
});
