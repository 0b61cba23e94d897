// A job-queue worker process for jobqueue.test.mjs: `node job-worker.mjs
// <port> <name> bullmq|stream <ms per job>`. Each job first records that it
// started (RPUSH started <name>:<job>), works for <ms per job>, then records
// its result once (HSETNX results <job> <name>). Runs until killed.
import { Worker } from "bullmq";
import Redis from "ioredis";

const [port, name, kind, ms] = [Number(process.argv[2]), process.argv[3], process.argv[4], Number(process.argv[5])];
const side = new Redis({ host: "127.0.0.1", port });
const sleep = (t) => new Promise((r) => setTimeout(r, t));

async function work(id) {
  await side.rpush("started", `${name}:${id}`);
  await sleep(ms);
  await side.hsetnx("results", id, name);
}

if (kind === "bullmq") {
  const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
  const w = new Worker("orders", async (job) => work(job.id), { connection, concurrency: 2, lockDuration: 1500, stalledInterval: 500 });
  w.on("error", (e) => console.error(`${name}: ${e.message}`));
} else {
  // A consumer of the stream `jobs` in group `workers`: new entries first,
  // then entries idle for 500 ms taken over from consumers that died.
  const r = new Redis({ host: "127.0.0.1", port });
  for (;;) {
    const claimed = await r.xautoclaim("jobs", "workers", name, 500, "0-0", "COUNT", 10);
    let entries = claimed[1];
    if (entries.length === 0) {
      const got = await r.xreadgroup("GROUP", "workers", name, "COUNT", 2, "BLOCK", 100, "STREAMS", "jobs", ">");
      entries = got ? got[0][1] : [];
    }
    for (const [id, fields] of entries) {
      await work(fields[1]);
      await r.xack("jobs", "workers", id);
    }
  }
}
