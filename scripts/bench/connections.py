#!/usr/bin/env python3
"""Gateway memory with many open keep-alive connections.

    scripts/bench/connections.py --port 9015 --token TOKEN --pid GATEWAY_PID
        [--connections 1000] [--rounds 2] [--path /api/user/group] [--timeout 60]

Python 3 standard library only, one thread (non-blocking sockets and `selectors`). Each round
opens --connections HTTP/1.1 connections to 127.0.0.1:PORT; every one sends one authenticated
keep-alive `GET PATH`, reads the whole answer (it must be 200 with "status":0 and no
`Connection: close`) and stays open. With all of them open and answered, it checks that the
gateway closed none of them, reads the gateway's VmRSS, RssAnon and VmHWM from
/proc/PID/status, then closes them all and reads them again once the gateway has let go of them.
A second round shows whether the memory of the first is reused or keeps growing.
Raises its own descriptor limit to the hard limit. Bounded: at most --timeout seconds per round.
Exit status 1 when a connection fails, is closed by the gateway or gets a bad answer.
"""

import argparse
import resource
import selectors
import socket
import sys
import time


def status_fields(pid):
    """VmRSS, RssAnon, VmHWM (KiB) of a process, from /proc/PID/status."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields


def open_descriptors(pid):
    try:
        import os
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def mib(kib):
    return "%.1f MiB" % (kib / 1024)


def memory_line(label, pid):
    f = status_fields(pid)
    print("%-34s VmRSS %10s   RssAnon %10s   VmHWM %10s   descriptors %d" % (
        label, mib(f["VmRSS"]), mib(f["RssAnon"]), mib(f["VmHWM"]), open_descriptors(pid)), flush=True)
    return f


class Client:
    """One connection: connect, send the request, read one whole answer (Content-Length)."""

    def __init__(self, request):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.out = request
        self.got = b""
        self.done = False

    def answer_complete(self):
        head_end = self.got.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = self.got[:head_end].decode("latin-1").lower()
        length = None
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip() == "content-length":
                length = int(value.strip())
        if length is None:
            raise RuntimeError("answer without Content-Length: %r" % head[:200])
        return len(self.got) >= head_end + 4 + length

    def check(self):
        head, _, body = self.got.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 200"):
            raise RuntimeError("answered %s: %r" % (lines[0], body[:200]))
        if any(l.lower().replace(" ", "") == "connection:close" for l in lines[1:]):
            raise RuntimeError("answer closes the connection: %s" % lines)
        if b'"status":0' not in body:
            raise RuntimeError("answer is not status 0: %r" % body[:200])


def open_round(port, request, count, timeout):
    """Opens COUNT connections, each answered once; returns them (all still open)."""
    selector = selectors.DefaultSelector()
    clients = []
    deadline = time.monotonic() + timeout
    pending = 0
    started = 0
    # Connect in batches, so the gateway's accept queue (listen backlog) is never overrun.
    while started < count or pending:
        while started < count and pending < 200:
            client = Client(request)
            client.sock.connect_ex(("127.0.0.1", port))
            selector.register(client.sock, selectors.EVENT_WRITE, client)
            clients.append(client)
            started += 1
            pending += 1
        if time.monotonic() > deadline:
            raise RuntimeError("%d of %d connections not answered within %d s" % (pending, count, timeout))
        for key, events in selector.select(timeout=1):
            client = key.data
            if events & selectors.EVENT_WRITE:
                error = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise RuntimeError("connect failed: errno %d" % error)
                sent = client.sock.send(client.out)
                client.out = client.out[sent:]
                if not client.out:
                    selector.modify(client.sock, selectors.EVENT_READ, client)
            elif events & selectors.EVENT_READ:
                chunk = client.sock.recv(65536)
                if not chunk:
                    raise RuntimeError("the gateway closed a connection before answering")
                client.got += chunk
                if client.answer_complete():
                    client.check()
                    client.done = True
                    selector.unregister(client.sock)
                    pending -= 1
    selector.close()
    return clients


def still_open(clients):
    """How many connections the gateway has closed (or sent anything on) since their answer."""
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    readable = selector.select(timeout=0)
    selector.close()
    return len(readable)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--pid", type=int, required=True, help="the gateway's pid")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--path", default="/api/user/group")
    parser.add_argument("--pad", type=int, default=0,
                        help="bytes of an extra X-Pad header in each request (a client with large cookies)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per round at most")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 64
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else min(hard, need), hard))

    pad = "X-Pad: %s\r\n" % ("p" * args.pad) if args.pad > 0 else ""
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n%s\r\n" % (
        args.path, args.port, args.token, pad)).encode()

    memory_line("before", args.pid)
    idle_descriptors = open_descriptors(args.pid)
    failed = False
    for round_number in range(1, args.rounds + 1):
        started = time.monotonic()
        clients = open_round(args.port, request, args.connections, args.timeout)
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # the gateway's last writes and frees
        closed = still_open(clients)
        label = "round %d: %d open (%.1f s)" % (round_number, len(clients) - closed, elapsed)
        memory_line(label, args.pid)
        if closed:
            print("connections: the gateway closed %d of %d idle keep-alive connections" % (closed, len(clients)))
            failed = True
        for client in clients:
            client.sock.close()
        # Until the gateway has closed its ends (its descriptor count falls back), at most 10 s.
        for _ in range(100):
            time.sleep(0.1)
            if open_descriptors(args.pid) <= idle_descriptors:
                break
        memory_line("round %d: all closed" % round_number, args.pid)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as error:
        print("connections: %s" % error, file=sys.stderr)
        sys.exit(1)
