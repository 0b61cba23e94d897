// Real damselfly processes on random free loopback ports for node --test.
// Every process started here is stopped by the test that started it.
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import Redis from "ioredis";

const START_TIMEOUT_MS = 10_000;

export function binary() {
  const bin = process.env.DAMSELFLY_BIN;
  if (!bin) throw new Error("set DAMSELFLY_BIN to the damselfly binary (scripts/test does)");
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once("error", () => done(false));
    sock.once("connect", () => sock.write("PING\r\n"));
    sock.once("data", (d) => done(d.toString().startsWith("+PONG")));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Last line of defence: a test file that exits (or fails) with servers still
// running must not leave them behind.
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export class Node {
  async start() {
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const child = spawn(binary(), ["--port", String(port), "--bind", "127.0.0.1", "--loglevel", "warn"], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      running.add(child);
      let exited = false;
      child.once("exit", () => {
        exited = true;
        running.delete(child);
      });
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (Date.now() < deadline && !exited) {
        if (await ping(port)) {
          this.child = child;
          this.port = port;
          this.exited = new Promise((r) => (exited ? r() : child.once("exit", r)));
          return this;
        }
        await sleep(20);
      }
      // probably lost the port to someone else: try another
      if (!exited) {
        child.kill("SIGKILL");
        await new Promise((r) => child.once("exit", r));
      }
    }
    throw new Error("damselfly did not start");
  }

  alive() {
    return this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops the process abruptly, as a crash would. */
  async kill() {
    if (this.alive()) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }
}

export async function startNodes(n) {
  return Promise.all(Array.from({ length: n }, () => new Node().start()));
}

const support = new Map();

/** Whether the server knows `command`: COMMAND INFO answers nil otherwise.
 * `call` sends a raw command with the caller's client. */
export async function supports(call, command) {
  if (!support.has(command)) {
    const info = await call(["COMMAND", "INFO", command]);
    support.set(command, Array.isArray(info) && info[0] !== null);
  }
  return support.get(command);
}

/** Skips test `t` with a printed reason when the server lacks `command`. */
export async function requireCommand(t, call, command, what) {
  if (await supports(call, command)) return true;
  t.skip(`${what}: the server answers unknown command for ${command.toUpperCase()}`);
  return false;
}

/** One RESP command over a fresh connection; resolves with the raw reply
 * text (enough for CLUSTER INFO), or null on error / after 1 s. */
function rawCommand(port, args) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (v) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1000, () => done(null));
    sock.once("error", () => done(null));
    sock.once("connect", () =>
      sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")),
    );
    sock.on("data", (d) => {
      buf += d.toString();
      const m = /^\$(\d+)\r\n/.exec(buf);
      if (m && buf.length >= m[0].length + Number(m[1])) done(buf.slice(m[0].length, m[0].length + Number(m[1])));
      else if (/^[+-:].*\r\n/.test(buf)) done(buf);
    });
  });
}

/** cluster-admin, next to the damselfly binary. */
export function clusterAdmin() {
  const bin = path.join(path.dirname(binary()), "cluster-admin");
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found: build it first (cargo build -p cluster-admin)`);
  return bin;
}

/** One `damselfly --cluster` process; its client and gRPC ports are both free. */
export class ClusterNode {
  async start() {
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const grpcPort = await freePort();
      if (port === grpcPort) continue;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "damselfly-cluster-"));
      const child = spawn(
        binary(),
        ["--port", String(port), "--bind", "127.0.0.1", "--loglevel", "warn", "--dir", dir,
          "--cluster", "--cluster-grpc-port", String(grpcPort)],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      running.add(child);
      let exited = false;
      child.once("exit", () => {
        exited = true;
        running.delete(child);
      });
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (Date.now() < deadline && !exited) {
        if (await ping(port)) {
          Object.assign(this, { child, port, grpcPort, dir });
          this.exited = new Promise((r) => (exited ? r() : child.once("exit", r)));
          return this;
        }
        await sleep(20);
      }
      if (!exited) {
        child.kill("SIGKILL");
        await new Promise((r) => child.once("exit", r));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    throw new Error("damselfly --cluster did not start");
  }

  get addr() {
    return `127.0.0.1:${this.port}`;
  }

  alive() {
    return this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill() {
    if (this.alive()) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs cluster-admin against the first node; rejects with its output on failure. */
export function admin(nodes, ...args) {
  return new Promise((resolve, reject) => {
    execFile(clusterAdmin(), ["--seed", nodes[0].addr, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`cluster-admin ${args.join(" ")} failed: ${stdout}${stderr}`)) : resolve(stdout),
    );
  });
}

/** Polls `check` every 50 ms until true; throws after `ms`. */
export async function waitFor(what, ms, check) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Starts 3 cluster nodes, forms them with cluster-admin create and waits
 * (bounded) for cluster_state:ok with all slots on every node. Stop them with
 * `stopCluster`. */
export async function startCluster(n = 3) {
  const nodes = [];
  try {
    for (let i = 0; i < n; i++) nodes.push(await new ClusterNode().start());
    await admin(nodes, "create", ...nodes.map((x) => x.addr));
    await waitFor("cluster_state:ok on every node", 30_000, async () => {
      const infos = await Promise.all(nodes.map((x) => rawCommand(x.port, ["CLUSTER", "INFO"])));
      return infos.every((i) => i && i.includes("cluster_state:ok") && i.includes("cluster_slots_assigned:16384"));
    });
    return nodes;
  } catch (e) {
    await stopCluster(nodes);
    throw e;
  }
}

export async function stopCluster(nodes) {
  await Promise.all(nodes.map((x) => x.kill()));
}

/** An ioredis Cluster client connected to `nodes` (patient timeouts for a
 * loaded machine). */
export async function clusterClient(nodes) {
  const cluster = new Redis.Cluster([{ host: "127.0.0.1", port: nodes[0].port }], {
    slotsRefreshTimeout: 5000,
    redisOptions: { connectTimeout: 5000, commandTimeout: 10_000 },
  });
  await cluster.ping();
  return cluster;
}
