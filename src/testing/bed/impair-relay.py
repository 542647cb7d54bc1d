#!/usr/bin/env python3
"""Delay and loss between two network interfaces, in user space.

The test bed's kernel has no sch_netem and no tc classifiers or actions, so
`tc qdisc ... netem` cannot impair a link. Instead the bed takes the host's
root-side veth off the bridge and puts this relay between it and a new veth
pair whose other end joins the bridge. The relay copies every Ethernet frame
from one interface to the other with AF_PACKET raw sockets, dropping each
with probability --loss-pct/100 and delivering the rest after --delay-ms
(plus or minus a uniform --jitter-ms), independently in each direction.
Without jitter every direction keeps its order, as on a real link.

Frames are read and written with a virtio-net header (PACKET_VNET_HDR), so
segmentation offload and partial checksums pass through untouched: the
kernel finishes them when the frame leaves the relay.

It prints "ready" once both sockets are bound, holds at most --limit frames
and --limit-bytes bytes per direction (tail drop past that, as a full queue
would), and exits on
SIGTERM or when its standard input (a pipe from the parent) closes, so it
never outlives the test that started it. On exit it prints its counters.

Usage: impair-relay.py --a IF --b IF [--delay-ms N] [--jitter-ms N]
                       [--loss-pct P] [--limit N] [--limit-bytes N] [--seed N]
"""
import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33  # not in Python's socket module
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
MAX_FRAME = 65536 + 64
BATCH = 64


def open_port(ifname):
    """A raw socket on `ifname` that sees every frame (promiscuous while it is open)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)  # root: past rmem_max, bursts fit
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((ifname, ETH_P_ALL))
    mreq = struct.pack("iHH8s", socket.if_nametoindex(ifname), PACKET_MR_PROMISC, 0, b"")
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    s.setblocking(False)
    return s


def main():
    p = argparse.ArgumentParser(description="delay and loss between two interfaces")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--loss-pct", type=float, default=0.0)
    p.add_argument("--limit", type=int, default=4096)
    p.add_argument("--limit-bytes", type=int, default=8 << 20)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    if args.delay_ms < 0 or args.jitter_ms < 0 or not 0 <= args.loss_pct <= 100 or args.limit < 1 or args.limit_bytes < 1:
        p.error("delay and jitter must be >= 0, loss within 0..100, limits >= 1")

    def stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    rnd = random.Random(args.seed)
    delay, jitter, loss = args.delay_ms / 1000.0, args.jitter_ms / 1000.0, args.loss_pct / 100.0
    ports = [open_port(args.a), open_port(args.b)]
    # queues[i] holds (due, seq, frame) for frames read on ports[i], to be sent on the other port.
    queues = [[], []]
    queued_bytes = [0, 0]
    counts = {"forwarded": 0, "lost": 0, "overflow": 0, "send_errors": 0}
    seq = 0

    poller = select.poll()
    for s in ports:
        poller.register(s, select.POLLIN)
    stdin_fd = sys.stdin.fileno()
    poller.register(stdin_fd, select.POLLIN | select.POLLHUP)
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    def send(i, frame):
        try:
            ports[1 - i].send(frame)
            counts["forwarded"] += 1
        except OSError:
            counts["send_errors"] += 1  # the other side is down or its queue is full: the frame is lost

    try:
        while True:
            now = time.monotonic()
            for i in (0, 1):
                q = queues[i]
                while q and q[0][0] <= now:
                    frame = heapq.heappop(q)[2]
                    queued_bytes[i] -= len(frame)
                    send(i, frame)
            due = [q[0][0] for q in queues if q]
            timeout = None if not due else max(0, int((min(due) - now) * 1000 + 0.999))
            for fd, ev in poller.poll(timeout):
                if fd == stdin_fd:
                    if not os.read(stdin_fd, 4096):
                        return  # the parent is gone
                    continue
                i = 0 if fd == ports[0].fileno() else 1
                for _ in range(BATCH):
                    try:
                        frame, addr = ports[i].recvfrom(MAX_FRAME)
                    except BlockingIOError:
                        break
                    except OSError:
                        break  # e.g. ENETDOWN once when the link goes down; it comes back with the link
                    if addr[2] == PACKET_OUTGOING:
                        continue  # our own sends, seen again on the way out
                    if loss and rnd.random() < loss:
                        counts["lost"] += 1
                        continue
                    if not delay and not jitter:
                        send(i, frame)
                        continue
                    if len(queues[i]) >= args.limit or queued_bytes[i] + len(frame) > args.limit_bytes:
                        counts["overflow"] += 1
                        continue
                    at = time.monotonic() + max(0.0, delay + (rnd.uniform(-jitter, jitter) if jitter else 0.0))
                    seq += 1
                    heapq.heappush(queues[i], (at, seq, frame))
                    queued_bytes[i] += len(frame)
    finally:
        for name, s in zip(("a", "b"), ports):
            try:
                counts["socket_drops_" + name] = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
            except OSError:
                pass
        try:
            sys.stdout.write("stats " + " ".join(f"{k}={v}" for k, v in counts.items()) + "\n")
            sys.stdout.flush()
        except OSError:
            pass  # nobody is listening any more


if __name__ == "__main__":
    try:
        main()
    except (SystemExit, KeyboardInterrupt):
        pass
