// A real event subscriber for tests: sandbox/fixtures/eventd_sub.cpp (an XSUB/XPUB zmq_proxy as
// eventd runs one, and a SUB that decodes every message with Boost.Serialization and nlohmann/json
// as SONiC's subscribers do), compiled once per machine with Debian's g++, libzmq3-dev,
// libboost-serialization-dev and nlohmann-json3-dev, and started on free loopback ports. Its
// `initCfgPath` is an init_cfg.json naming those endpoints, as /etc/sonic/init_cfg.json does.
import { join } from "node:path";
import { REPO_ROOT } from "../../src/build/bundle.ts";

const SOURCE = join(REPO_ROOT, "sandbox/fixtures/eventd_sub.cpp");
const HEADERS = [
  "/usr/include/zmq.h",
  "/usr/include/boost/archive/text_iarchive.hpp",
  "/usr/include/nlohmann/json.hpp",
];

/** One message as the subscriber decoded it. */
export interface ReceivedEvent {
  source?: string;
  d?: string;
  r?: string;
  s?: string;
  t?: string;
  event?: Record<string, Record<string, string>> | null;
  error?: string;
}

/** A running subscriber. */
export interface Eventd {
  /** The proxy's XSUB endpoint (where publishers connect). */
  xsubEndpoint: string;
  xpubEndpoint: string;
  /** An init_cfg.json whose `events` names both endpoints. */
  initCfgPath: string;
  /** Every message received so far. */
  received(): ReceivedEvent[];
  /** Waits until `n` messages arrived (rejects after `timeoutMs`, naming what arrived). */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
  stop(): Promise<void>;
}

/** Why the subscriber cannot be built here, or undefined. */
export function eventdUnavailableReason(): string | undefined {
  for (const h of HEADERS) {
    try {
      Deno.statSync(h);
    } catch {
      return `${h} missing (Debian libzmq3-dev, libboost-serialization-dev, nlohmann-json3-dev)`;
    }
  }
  try {
    Deno.statSync("/usr/bin/g++");
  } catch {
    return "g++ missing (Debian g++)";
  }
  return undefined;
}

async function buildSubscriber(): Promise<string> {
  const text = await Deno.readTextFile(SOURCE);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  const key = [...digest.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const out = join(Deno.env.get("TMPDIR") ?? "/tmp", `ks-eventd-sub-${key}`);
  try {
    await Deno.stat(out);
    return out;
  } catch { /* build it */ }
  const tmp = `${out}.${Deno.pid}`;
  const r = await new Deno.Command("g++", {
    args: ["-O1", "-o", tmp, SOURCE, "-lzmq", "-lboost_serialization", "-lpthread"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`g++ ${SOURCE}: ${new TextDecoder().decode(r.stderr).trim()}`);
  await Deno.rename(tmp, out);
  return out;
}

/** Builds (once) and starts the subscriber on loopback ports. */
export async function startEventd(opts: { dir?: string } = {}): Promise<Eventd> {
  const binary = await buildSubscriber();
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "ks-eventd-" });
  const logPath = join(dir, "eventd.log");
  const child = new Deno.Command(binary, {
    args: ["tcp://127.0.0.1:*", "tcp://127.0.0.1:*"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrDone = spawnStderr(child, logPath);
  const messages: ReceivedEvent[] = [];
  const { promise: readyP, resolve: ready, reject: failed } = Promise.withResolvers<
    [string, string]
  >();
  const reading = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ready (\S+) (\S+)$/.exec(line);
        if (m) ready([m[1], m[2]]);
        else if (line.trim() !== "") messages.push(JSON.parse(line));
      }
    }
    failed(new Error(`eventd_sub exited before it was ready (log: ${logPath})`));
  })();
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await reading.catch(() => {});
    await stderrDone;
  };
  let endpoints: [string, string];
  try {
    endpoints = await Promise.race([
      readyP,
      new Promise<never>((_, rej) =>
        setTimeout(() => rej(new Error("eventd_sub not ready in 20 s")), 20_000)
      ),
    ]);
  } catch (e) {
    await stop();
    throw e;
  }
  const initCfgPath = join(dir, "init_cfg.json");
  await Deno.writeTextFile(
    initCfgPath,
    JSON.stringify({ events: { xsub_path: endpoints[0], xpub_path: endpoints[1] } }),
  );
  return {
    xsubEndpoint: endpoints[0],
    xpubEndpoint: endpoints[1],
    initCfgPath,
    received: () => [...messages],
    async waitFor(n, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      while (messages.length < n) {
        if (Date.now() > until) {
          throw new Error(`${messages.length}/${n} events arrived: ${JSON.stringify(messages)}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      return [...messages];
    },
    stop,
  };
}

async function spawnStderr(child: Deno.ChildProcess, logPath: string): Promise<void> {
  const file = await Deno.open(logPath, { write: true, create: true, truncate: true });
  try {
    for await (const chunk of child.stderr) await file.write(chunk);
  } catch {
    /* closed */
  } finally {
    file.close();
  }
}
