// The watchdog's health checks: a TCP connect, a process present in /proc (like `pgrep -x`), an
// HTTP GET answering 2xx/3xx. Each probe takes an AbortSignal and a timeout; a probe that does not
// finish in time is a failure with a message saying so — never a hung answer.

/** What one probe reports. */
export interface ProbeResult {
  /** The probe's name, e.g. `tcp 127.0.0.1:50051`, `process telemetry`, `http http://…`. */
  name: string;
  ok: boolean;
  /** Human-readable outcome (`connected`, `connection refused`, `no answer within 800 ms`). */
  detail: string;
  /** How long the probe took (ms, rounded to 0.1). */
  ms: number;
}

/** A configured probe: `run` resolves (never rejects) by itself or is cut off by the caller. */
export interface Probe {
  readonly name: string;
  run(signal: AbortSignal): Promise<{ ok: boolean; detail: string }>;
}

function describeError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof DOMException && error.name === "AbortError") return "aborted";
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0].replace(/ \(os error \d+\)$/, "");
}

/**
 * A TCP connect to host:port; passes when the connection is accepted. A connect that hangs (SYNs
 * dropped) is shared by later runs instead of piling up new sockets until the kernel gives up.
 */
export function tcpProbe(host: string, port: number): Probe {
  const where = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  let inflight: Promise<{ ok: boolean; detail: string }> | undefined;
  const connect = () =>
    Deno.connect({ hostname: host, port }).then(
      (conn) => {
        conn.close();
        return { ok: true, detail: "connected" };
      },
      (error) => ({ ok: false, detail: describeError(error) }),
    ).finally(() => (inflight = undefined));
  return {
    name: `tcp ${where}`,
    run(signal) {
      inflight ??= connect();
      const aborted = new Promise<{ ok: boolean; detail: string }>((resolve) =>
        signal.addEventListener("abort", () => resolve({ ok: false, detail: "aborted" }), {
          once: true,
        })
      );
      return Promise.race([inflight, aborted]);
    },
  };
}

/**
 * A live (not zombie) process whose name (`/proc/PID/comm`, as `pgrep -x` matches) or argv[0]
 * basename equals `name` (comm is cut at 15 characters by the kernel, so longer names match on
 * the prefix).
 * Remembers the last match so the common case is one small read, not a /proc scan.
 */
export function processProbe(name: string, procRoot = "/proc"): Probe {
  const comm = name.slice(0, 15);
  let lastPid: string | undefined;
  const matches = (pid: string): boolean => {
    try {
      const c = Deno.readTextFileSync(`${procRoot}/${pid}/comm`).trimEnd();
      let named = c === comm;
      if (!named) {
        const argv0 = Deno.readTextFileSync(`${procRoot}/${pid}/cmdline`).split("\0")[0];
        named = argv0 !== "" && argv0.slice(argv0.lastIndexOf("/") + 1) === name;
      }
      if (!named) return false;
      // A zombie (dead, not yet reaped) still carries its name: it does not count as running.
      const stat = Deno.readTextFileSync(`${procRoot}/${pid}/stat`);
      return stat[stat.lastIndexOf(")") + 2] !== "Z";
    } catch {
      return false; // gone, or a kernel thread without cmdline
    }
  };
  return {
    name: `process ${name}`,
    run() {
      if (lastPid && matches(lastPid)) {
        return Promise.resolve({ ok: true, detail: `pid ${lastPid}` });
      }
      lastPid = undefined;
      for (const entry of Deno.readDirSync(procRoot)) {
        if (!/^\d+$/.test(entry.name) || entry.name === String(Deno.pid)) continue;
        if (matches(entry.name)) {
          lastPid = entry.name;
          return Promise.resolve({ ok: true, detail: `pid ${entry.name}` });
        }
      }
      return Promise.resolve({ ok: false, detail: "no such process" });
    },
  };
}

/** An HTTP GET of `url`; passes on a 2xx or 3xx status (redirects are not followed). */
export function httpProbe(url: string): Probe {
  return {
    name: `http ${url}`,
    async run(signal) {
      try {
        const response = await fetch(url, { signal, redirect: "manual" });
        await response.body?.cancel();
        const ok = response.status >= 200 && response.status < 400;
        return { ok, detail: `status ${response.status}` };
      } catch (error) {
        return { ok: false, detail: describeError(error) };
      }
    },
  };
}

/**
 * Runs every probe concurrently and returns all results by `deadlineMs` at the latest: a probe
 * still running then is reported failed (`no answer within N ms`) and aborted.
 */
export async function runProbes(
  probes: readonly Probe[],
  deadlineMs: number,
): Promise<ProbeResult[]> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"deadline">((resolve) => {
    timer = setTimeout(() => resolve("deadline"), deadlineMs);
  });
  try {
    return await Promise.all(probes.map(async (probe): Promise<ProbeResult> => {
      const t0 = performance.now();
      const outcome = await Promise.race([
        probe.run(controller.signal).catch((e) => ({ ok: false, detail: describeError(e) })),
        expired,
      ]);
      const ms = Math.round((performance.now() - t0) * 10) / 10;
      if (outcome === "deadline") {
        return { name: probe.name, ok: false, detail: `no answer within ${deadlineMs} ms`, ms };
      }
      return { name: probe.name, ...outcome, ms };
    }));
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
