// Loopback-only networking helpers for harnesses: a free TCP port on 127.0.0.1 and a wait until
// something accepts connections there. Nothing here ever touches a non-loopback address.

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Waits until 127.0.0.1:`port` accepts a TCP connection; throws after `ms`. */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`nothing accepted connections on 127.0.0.1:${port} within ${ms} ms`);
}

/** Polls `predicate` every `everyMs` until it returns true; throws naming `what` after `ms`. */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (true) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Adds (idempotently) a host route `blackhole <cidr>`, so that an address the project only uses
 * inside its own namespaces or in simulated status fields (kwok node and pod IPs, the lab switches'
 * node IPs) can never be reached through the machine's default route. Kept afterwards: it covers
 * only that range, and parallel suites must not race to remove it. Returns the error text when the
 * route could not be added (not root), else undefined.
 */
export async function blackholeRoute(cidr: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("ip", {
      args: ["route", "replace", "blackhole", cidr],
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.success
      ? undefined
      : new TextDecoder().decode(out.stderr).trim() || "ip route failed";
  } catch (error) {
    return (error as Error).message;
  }
}
