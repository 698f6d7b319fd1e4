// Test helper: loopback endpoints that never answer, to prove the watchdog's deadline. A TCP
// listener whose accept queue is full (backlog 0, filled once, never accepting) makes the kernel
// drop further SYNs, so a connect hangs for real; an HTTP server accepts and never responds.

/** A running endpoint; `close()` must be called in `finally`. */
export interface HangingEndpoint {
  port: number;
  close(): Promise<void>;
}

const FULL_BACKLOG = `
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
filler = socket.create_connection(s.getsockname())  # fills the accept queue; nobody accepts
print(s.getsockname()[1], flush=True)
sys.stdin.read()  # until the test closes our stdin
`;

/** A TCP port where connect() hangs (SYNs dropped: accept queue full). */
export async function hangingTcp(): Promise<HangingEndpoint> {
  const child = new Deno.Command("/usr/bin/python3", {
    args: ["-c", FULL_BACKLOG],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("hanging TCP helper exited early");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  await child.stdout.cancel();
  return {
    port: Number(text.trim()),
    async close() {
      await child.stdin.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

/** An HTTP server on 127.0.0.1 that accepts connections and never answers. */
export function hangingHttp(): HangingEndpoint {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch { /* closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}
