// node-redlock v5 across 3 and 5 independent standalone damselfly nodes.
// Every redlock operation runs a Lua script, so these skip until the server
// knows EVAL.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import Redis from "ioredis";
import Redlock, { ExecutionError, Lock } from "redlock";
import { requireCommand, startNodes } from "./helpers.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const SCRIPTS = "redlock runs every operation as a Lua script";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const majority = (flags) => flags.filter(Boolean).length > flags.length / 2;
// bounded retries: a contender gives up after about 400 * 75 ms
const PATIENT = { retryCount: 400, retryDelay: 50, retryJitter: 25 };

/** Waits (bounded) until an ioredis client is connected and ready. */
function ready(client) {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("client not ready in 10 s")), 10_000);
    client.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

let nodes = [];
let clients = [];

async function setup(t, n) {
  nodes = await startNodes(n);
  const started = nodes;
  t.after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(started.map((node) => node.kill()));
  });
  // No offline queue: a command to a dead node fails at once instead of
  // waiting for a reconnect, so the other nodes decide.
  clients = nodes.map((node) => {
    const c = new Redis({ host: "127.0.0.1", port: node.port, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    c.on("error", () => {});
    return c;
  });
  await Promise.all(clients.map((c) => ready(c)));
  return requireCommand(t, (args) => clients[0].call(...args), "eval", SCRIPTS);
}

for (const n of [3, 5]) {
  describe(`${n} nodes`, () => {
    test("mutual exclusion: 20 async contenders, no lost updates", async (t) => {
      if (!(await setup(t, n))) return;
      const redlock = new Redlock(clients, PATIENT);
      const counter = clients[0];
      await counter.set("counter", 0);
      let inside = 0;
      let mostInside = 0;
      const contender = async () => {
        for (let round = 0; round < 3; round++) {
          const lock = await redlock.acquire(["counter"], 10_000);
          try {
            inside++;
            mostInside = Math.max(mostInside, inside);
            const value = Number(await counter.get("counter")); // read ...
            await sleep(1); // ... let the others run ...
            await counter.set("counter", value + 1); // ... write back
            inside--;
          } finally {
            await lock.release();
          }
        }
      };
      await Promise.all(Array.from({ length: 20 }, contender));
      assert.equal(mostInside, 1);
      assert.equal(await counter.get("counter"), "60");
    });

    test("extension keeps the lock past its first lease", async (t) => {
      if (!(await setup(t, n))) return;
      const redlock = new Redlock(clients, { retryCount: 0 });
      let lock = await redlock.acquire(["ext"], 1000);
      await sleep(600);
      lock = await lock.extend(1000);
      await sleep(600); // past the first lease
      await assert.rejects(redlock.acquire(["ext"], 1000), ExecutionError);
      const pttls = await Promise.all(clients.map((c) => c.pttl("ext")));
      assert.ok(majority(pttls.map((p) => p > 0)), `pttls ${pttls}`);
      await lock.release();
      const again = await redlock.acquire(["ext"], 1000);
      await again.release();
    });

    test("only the owner releases", async (t) => {
      if (!(await setup(t, n))) return;
      const redlock = new Redlock(clients, { retryCount: 0 });
      const lock = await redlock.acquire(["own"], 10_000);
      const before = await Promise.all(clients.map((c) => c.get("own")));
      assert.ok(majority(before.map((v) => v === lock.value)));
      const impostor = new Lock(redlock, ["own"], "not-the-owner", [], Date.now() + 10_000);
      await assert.rejects(redlock.release(impostor), ExecutionError);
      // No node that held the owner's value lost it (acquire returns once a
      // majority voted; the remaining votes may still land afterwards).
      const after = await Promise.all(clients.map((c) => c.get("own")));
      before.forEach((v, i) => {
        if (v === lock.value) assert.equal(after[i], lock.value, `node ${i} lost the owner's lock`);
      });
      assert.ok(after.every((v) => v === null || v === lock.value), `after ${after}`);
      await assert.rejects(redlock.acquire(["own"], 10_000), ExecutionError);
      await lock.release();
      const next = await redlock.acquire(["own"], 10_000);
      await next.release();
    });

    test("the lock expires after its holder dies", async (t) => {
      if (!(await setup(t, n))) return;
      const holderCode = `
        import Redis from "ioredis";
        import Redlock from "redlock";
        const ports = process.argv.slice(1).map(Number);
        const redlock = new Redlock(ports.map((port) => new Redis({ host: "127.0.0.1", port })), { retryCount: 0 });
        await redlock.acquire(["job"], 1000);
        console.log("held");
        setTimeout(() => {}, 60_000); // never extends, never releases
      `;
      const holder = spawn(process.execPath, ["--input-type=module", "-e", holderCode, ...nodes.map((x) => String(x.port))], {
        cwd: here,
        stdio: ["ignore", "pipe", "inherit"],
      });
      const exited = new Promise((r) => holder.once("exit", r));
      let heldSince;
      try {
        await new Promise((resolve, reject) => {
          holder.stdout.once("data", (d) => (d.toString().trim() === "held" ? resolve() : reject(new Error(`${d}`))));
          holder.once("exit", () => reject(new Error("holder exited early")));
        });
        heldSince = Date.now();
      } finally {
        holder.kill("SIGKILL");
        await exited;
      }
      const redlock = new Redlock(clients, { retryCount: 0 });
      await assert.rejects(redlock.acquire(["job"], 5000), ExecutionError);
      const lock = await redlock.acquire(["job"], 5000, { retryCount: 50, retryDelay: 100, retryJitter: 0 });
      const waited = Date.now() - heldSince;
      assert.ok(waited >= 900 && waited < 5000, `waited ${waited} ms`);
      await lock.release();
    });

    test(`keeps working with ${(n - 1) / 2} of ${n} nodes killed`, async (t) => {
      if (!(await setup(t, n))) return;
      await Promise.all(nodes.slice(0, (n - 1) / 2).map((node) => node.kill()));
      const counter = clients[n - 1]; // a surviving node
      await counter.set("counter", 0);
      const redlock = new Redlock(clients, PATIENT); // still lists the dead nodes
      const contender = async () => {
        for (let round = 0; round < 3; round++) {
          await redlock.using(["survive"], 5000, async () => {
            const value = Number(await counter.get("counter"));
            await sleep(1);
            await counter.set("counter", value + 1);
          });
        }
      };
      await Promise.all(Array.from({ length: 5 }, contender));
      assert.equal(await counter.get("counter"), "15");

      const once = new Redlock(clients, { retryCount: 0 });
      let lock = await once.acquire(["solo"], 5000);
      await assert.rejects(once.acquire(["solo"], 5000), ExecutionError);
      lock = await lock.extend(5000);
      await lock.release();
      const next = await once.acquire(["solo"], 5000);
      await next.release();
    });
  });
}
