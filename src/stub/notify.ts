// sd_notify(3) for ks-stub: one `STATUS=<text>` datagram to the socket systemd names in
// $NOTIFY_SOCKET, so the unit's `systemctl status` shows what `wait` is waiting for ("API server
// unreachable since …, container running", "no telemetry pod on node sw1 since …"). systemd sets
// NOTIFY_SOCKET for a service only when its unit has `NotifyAccess=` (ks-render's drop-in sets
// `all`: the stub runs under the feature's launcher script, and start runs as ExecStartPre) or is
// `Type=notify`; without it there is nothing to tell, and nothing is sent. The unit's Type= is
// never changed: STATUS= changes nothing about how systemd starts or stops it.
//
// The datagram goes through libc (socket + sendto over the shared FFI handle, src/libc.ts): Deno's
// own unix datagram sockets are unstable API and must bind a path first, and sd_notify's address
// may be abstract (`@…`). Sending never blocks (MSG_DONTWAIT) and never fails the verb: a failure
// is one log line, once; a failed send is tried again at the next change.
import { errnoOf, loadLibc } from "../libc.ts";
import type { Logger } from "../log.ts";

/** Sends one status line to systemd (deduplicated: the same text twice is sent once). */
export type Notify = (status: string) => void;

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): sa_family_t + sun_path[108]. */
const SOCKADDR_UN_SIZE = 110;

/**
 * `struct sockaddr_un` for $NOTIFY_SOCKET (an absolute path, or `@name` for the abstract
 * namespace, as sd_notify reads it) and its length; an Error for anything else.
 */
export function notifyAddress(value: string): { addr: Uint8Array; len: number } | Error {
  const abstract = value.startsWith("@");
  if (!abstract && !value.startsWith("/")) {
    return new Error(`NOTIFY_SOCKET "${value}" is not an absolute path or @abstract name`);
  }
  const name = new TextEncoder().encode(abstract ? value.slice(1) : value);
  // A path needs its terminating NUL inside sun_path; an abstract name starts with one instead.
  if (name.length + 1 > SOCKADDR_UN_SIZE - 2 || (!abstract && name.includes(0))) {
    return new Error(`NOTIFY_SOCKET "${value}" does not fit a unix socket address`);
  }
  const addr = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, abstract ? 3 : 2);
  return { addr, len: abstract ? 3 + name.length : 2 + name.length + 1 };
}

/** The status text as one line (sd_notify's assignments are newline-separated). */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ");
}

/**
 * A Notify for $NOTIFY_SOCKET (`env`), or undefined when systemd gave the process none. Problems
 * (a bad address, no FFI, a send that fails) are logged once and make the notifier a no-op.
 */
export function systemdNotifier(
  log: Logger,
  env: string | undefined = Deno.env.get("NOTIFY_SOCKET"),
): Notify | undefined {
  if (!env) return undefined;
  let last: string | undefined;
  let broken = false;
  let warned = false;
  /** Logs once; `final`: this process cannot notify at all (a send failing may be transient). */
  const fail = (why: string, final = true) => {
    broken ||= final;
    if (warned) return;
    warned = true;
    log.warn("cannot tell systemd the unit's status; systemctl status shows no Status: line", {
      notify_socket: env,
      error: why,
    });
  };
  return (status) => {
    const text = oneLine(status);
    if (broken || text === last) return;
    const address = notifyAddress(env);
    if (address instanceof Error) return fail(address.message);
    const libc = loadLibc();
    if (libc instanceof Error) return fail(libc.message);
    const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(`socket: errno ${errnoOf(libc)}`);
    try {
      const message = new TextEncoder().encode(`STATUS=${text}`);
      const sent = libc.sendto(
        fd,
        message,
        BigInt(message.length),
        MSG_DONTWAIT | MSG_NOSIGNAL,
        address.addr,
        address.len,
      );
      // Not sent (systemd's queue full, or systemd restarting): the next change tries again.
      if (Number(sent) < 0) return fail(`sendto: errno ${errnoOf(libc)}`, false);
      last = text;
    } finally {
      libc.close(fd);
    }
  };
}
