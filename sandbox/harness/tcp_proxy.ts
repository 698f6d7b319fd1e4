// A loopback TCP forwarder for stub tests: ks-stub talks to the API server through it, and a test
// cuts it (every connection reset, the port closed) to make a real API-server outage as the
// switch sees it, then restores it on the same port. TLS passes through untouched.

/** A running forwarder. */
export interface TcpProxy {
  port: number;
  /** `https://127.0.0.1:<port>`. */
  url: string;
  /** Closes the listener and resets every open connection (an outage). */
  cut(): void;
  /** Listens again on the same port. */
  restore(): void;
  /** Stops for good. */
  stop(): void;
}

/** Starts forwarding 127.0.0.1:<free port> to `target` (host:port). */
export function startTcpProxy(target: { hostname: string; port: number }): TcpProxy {
  let listener: Deno.Listener | undefined;
  let port = 0;
  const open = new Set<Deno.Conn>();
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable);
    } catch { /* reset */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* closed */ }
      open.delete(c);
    }
  };
  const serve = async (l: Deno.Listener) => {
    for await (const client of l) {
      try {
        const upstream = await Deno.connect(target);
        open.add(client);
        open.add(upstream);
        pipe(client, upstream);
        pipe(upstream, client);
      } catch {
        client.close();
      }
    }
  };
  const listen = () => {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (listener.addr as Deno.NetAddr).port;
    serve(listener).catch(() => {});
  };
  const cut = () => {
    try {
      listener?.close();
    } catch { /* closed */ }
    listener = undefined;
    for (const c of open) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    open.clear();
  };
  listen();
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    cut,
    restore: () => {
      if (!listener) listen();
    },
    stop: cut,
  };
}
