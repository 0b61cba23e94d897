// Real damselfly processes on random free loopback ports for node --test.
// Every process started here is stopped by the test that started it.
import { spawn } from "node:child_process";
import net from "node:net";

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
