// A receiving end for sd_notify(3) datagrams, as systemd's notify socket is one: a unix datagram
// socket bound to a path or an abstract name (`@…`), read by a python3 child that prints each
// datagram as one JSON line. For tests of what a tool tells systemd when systemd itself is not
// PID 1 (the real-switch tests read the same messages back from systemd: `systemctl show -p
// StatusText`).

/** A bound notify socket and what it received. */
export interface NotifySocket {
  /** The NOTIFY_SOCKET value to give a process: the path, or `@name`. */
  address: string;
  /** Every datagram received so far, in order. */
  messages(): string[];
  stop(): Promise<void>;
}

const RECEIVER = `
import json, socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print(json.dumps("bound"), flush=True)
while True:
    print(json.dumps(s.recv(4096).decode("utf-8", "replace")), flush=True)
`;

/** Binds `address` (a path, or `@name` for the abstract namespace) and starts receiving. */
export async function startNotifySocket(address: string): Promise<NotifySocket> {
  const child = new Deno.Command("python3", {
    args: ["-c", RECEIVER, address],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const got: string[] = [];
  let started = false;
  let bound: () => void = () => {};
  const ready = new Promise<void>((resolve) => (bound = resolve));
  const reading = (async () => {
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as string;
        buf = buf.slice(nl + 1);
        if (!started && line === "bound") {
          started = true;
          bound();
        } else got.push(line);
      }
    }
  })();
  const exited = child.status.then((s) => {
    if (!started) throw new Error(`notify socket ${address}: python3 exited ${s.code}`);
  });
  await Promise.race([ready, exited]);
  return {
    address,
    messages: () => [...got],
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await reading.catch(() => {});
      if (address.startsWith("/")) await Deno.remove(address).catch(() => {});
    },
  };
}
