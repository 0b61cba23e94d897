// Job queues as shops run them: BullMQ (whose queues are Lua scripts,
// sorted sets, blocking pops and a stream of events) and a plain stream
// consumer group with XAUTOCLAIM. Several worker processes share the jobs,
// one is killed with SIGKILL in the middle of its jobs, and every job must
// still be done exactly once, its unfinished jobs by the survivors.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import Redis from "ioredis";
import { Node } from "./helpers.mjs";

const WORKER = fileURLToPath(new URL("./job-worker.mjs", import.meta.url));
const JOBS = 60;
let node;
let redis;
const children = new Set();

before(async () => {
  node = await new Node().start();
  redis = new Redis({ host: "127.0.0.1", port: node.port });
});

after(async () => {
  const left = [...children];
  for (const c of left) c.kill("SIGKILL");
  await Promise.all(left.map(exited));
  redis.disconnect();
  await node.kill();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const exited = (c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once("exit", r)));

function worker(name, kind, ms) {
  const c = fork(WORKER, [String(node.port), name, kind, String(ms)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  children.add(c);
  c.once("exit", () => children.delete(c));
  return c;
}

async function waitFor(what, cond, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Runs the jobs with two steady workers and a slow one that is killed
 * once it holds unfinished jobs; returns what the slow one had started. */
async function runWithOneKilled(kind) {
  const victim = worker("victim", kind, 60_000);
  await waitFor("the victim to start a job", async () => (await redis.lrange("started", 0, -1)).some((s) => s.startsWith("victim:")));
  const steady = [worker("w1", kind, 5), worker("w2", kind, 5)];
  victim.kill("SIGKILL");
  await exited(victim);
  const lost = (await redis.lrange("started", 0, -1)).filter((s) => s.startsWith("victim:")).map((s) => s.slice(7));
  await waitFor("every job to be done", async () => (await redis.hlen("results")) === JOBS);
  for (const c of steady) c.kill("SIGKILL");
  await Promise.all(steady.map(exited));
  return lost;
}

test("BullMQ: a worker killed mid-job, its jobs finished once by the others", async () => {
  await redis.flushall();
  const q = new Queue("orders", { connection: { host: "127.0.0.1", port: node.port, maxRetriesPerRequest: null } });
  await q.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: "order", data: { i }, opts: { jobId: `o${i}` } })));
  const lost = await runWithOneKilled("bullmq");
  assert.ok(lost.length > 0);
  const results = await redis.hgetall("results");
  assert.equal(Object.keys(results).length, JOBS);
  for (const id of lost) assert.notEqual(results[id], "victim", `${id} was finished by a live worker`);
  await waitFor("BullMQ to record every completion", async () => (await q.getJobCounts("completed")).completed === JOBS);
  const counts = await q.getJobCounts();
  assert.deepEqual([counts.completed, counts.failed, counts.active, counts.waiting], [JOBS, 0, 0, 0]);
  await q.close();
});

test("stream consumer group: XAUTOCLAIM hands a dead consumer's entries over", async () => {
  await redis.flushall();
  await redis.xgroup("CREATE", "jobs", "workers", "$", "MKSTREAM");
  for (let i = 0; i < JOBS; i++) await redis.xadd("jobs", "*", "job", `j${i}`);
  const lost = await runWithOneKilled("stream");
  assert.ok(lost.length > 0);
  const results = await redis.hgetall("results");
  assert.equal(Object.keys(results).length, JOBS);
  for (const id of lost) assert.notEqual(results[id], "victim", `${id} was finished by a live worker`);
  // Every entry acknowledged: nothing pending, no job started twice by
  // the living (each entry was delivered to one live consumer at a time).
  await waitFor("every entry to be acknowledged", async () => (await redis.xpending("jobs", "workers"))[0] === 0);
  const started = (await redis.lrange("started", 0, -1)).filter((s) => !s.startsWith("victim:")).map((s) => s.split(":")[1]);
  assert.equal(new Set(started).size, started.length, "a job started twice by live workers");
  assert.equal(started.length, JOBS);
});
