#!/usr/bin/env python3
"""A stand-in for SONiC's telemetry daemon: listens on a TCP port and answers each connection
with one line, so a watchdog TCP probe (and `nc`) can see it; optionally grows its memory at a
steady rate (for OOM tests). Standard library only (python3 is there anyway for supervisord).

Settings: flag > environment > default.
  --listen HOST:PORT   TELEMETRY_LISTEN    127.0.0.1:50051
  --grow-mb N          TELEMETRY_GROW_MB   0 (grow to N MiB of touched memory, then hold)
  --grow-rate MB/S     TELEMETRY_GROW_RATE 64
  --name NAME          TELEMETRY_NAME      telemetry (the process name, as pgrep sees it)
Exits 0 on SIGTERM/SIGINT, 2 on bad input, 1 when the port cannot be bound.
"""
import argparse
import ctypes
import os
import selectors
import signal
import socket
import sys
import time

PROG = "telemetry"


def log(message):
    sys.stderr.write(f"{PROG}[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def set_process_name(name):
    """Sets /proc/self/comm (what pgrep and the watchdog's process probe match)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError) as error:
        log(f"cannot set the process name: {error}")


def parse_args(argv):
    env = os.environ.get
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default=env("TELEMETRY_LISTEN") or "127.0.0.1:50051")
    parser.add_argument("--grow-mb", type=int, default=int(env("TELEMETRY_GROW_MB") or 0))
    parser.add_argument("--grow-rate", type=float, default=float(env("TELEMETRY_GROW_RATE") or 64))
    parser.add_argument("--name", default=env("TELEMETRY_NAME") or "telemetry")
    args = parser.parse_args(argv)
    host, sep, port = args.listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        parser.error(f'--listen: "{args.listen}" is not host:port')
    args.host, args.port = host.strip("[]") or "127.0.0.1", int(port)
    if args.grow_mb < 0 or args.grow_rate <= 0:
        parser.error("--grow-mb must be >= 0 and --grow-rate > 0")
    return args


def main(argv):
    args = parse_args(argv)
    set_process_name(args.name)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((args.host, args.port))
    except OSError as error:
        log(f"cannot listen on {args.listen}: {error.strerror}")
        return 1
    server.listen(64)
    server.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ)
    log(f"listening on {args.host}:{server.getsockname()[1]}"
        + (f", growing to {args.grow_mb} MiB at {args.grow_rate:g} MiB/s" if args.grow_mb else ""))

    hoard = []
    grown = 0
    started = time.monotonic()
    while not stop:
        if grown < args.grow_mb:
            due = min(args.grow_mb, int((time.monotonic() - started) * args.grow_rate) + 1)
            while grown < due:
                hoard.append(bytearray(b"\x5a") * (1 << 20))  # touched: counts in RSS
                grown += 1
            if grown == args.grow_mb:
                log(f"holding {grown} MiB")
        try:
            events = sel.select(timeout=0.05 if grown < args.grow_mb else 0.2)
        except InterruptedError:
            continue
        for _key, _mask in events:
            try:
                conn, _addr = server.accept()
            except (BlockingIOError, InterruptedError):
                continue
            try:
                conn.setblocking(True)
                conn.settimeout(0.2)
                conn.sendall(f"{args.name} ok\n".encode())
            except OSError:
                pass
            finally:
                conn.close()
    log(f"{stop[0]}: exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
