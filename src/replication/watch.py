#!/usr/bin/env python3
"""skyha's change watcher: recursive inotify over a mirror module's replicated
directories, as a child of the agent.

Why not inotifywait or @parcel/watcher: inotifywait drops the kernel's queue
overflow without a word (a replicated change would be missed silently), and
@parcel/watcher batches events for 50-500 ms. This is inotify through ctypes,
nothing else: it reports every changed path at once, says when the kernel
dropped events, and never misses a directory created while watching (the
watch is added first, then the new directory is listed and everything found
in it is reported).

    watch.py [--sentinel DIR] [--quiet] ROOT...

--quiet: say nothing of changes (C) until a sentinel named <pid>-<seq>.on
is created; one named <pid>-<seq>.off makes it quiet again. Watches are kept
either way (a secondary's applier writes, and a promotion must not wait for
watches).

Writes records to stdout, each ending in NUL (paths may hold any byte but NUL):
    R                  ready: every directory is watched
    C <path>           this path changed (or may have: the agent reads it)
    O                  the kernel dropped events: anything under the roots may have changed, and
                       sentinels may have been missed (every directory is watched again, and the
                       latest quiet/loud sentinel still in the directory applied, before this is said)
    S <name>           a file in the sentinel directory was written (barrier flush)
    W <count>          directories watched now
    E <message>        an error (a watch that could not be added, ...)
Exits when stdin closes (the agent is gone). An 'L' on stdin ends --quiet at once (when
the agent cannot write a sentinel).
"""
import ctypes
import ctypes.util
import os
import select
import struct
import sys

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_EXCL_UNLINK = 0x4000000
IN_ISDIR = 0x40000000
IN_CLOEXEC = 0o2000000

MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
HEADER = struct.Struct('iIII')
STAGING = b'.skyha-staging'

libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]

out = sys.stdout.buffer


def emit(kind, payload=b''):
    out.write(kind + (b' ' + payload if payload else b'') + b'\0')


class Watcher:
    def __init__(self, roots, sentinel):
        self.fd = libc.inotify_init1(IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), 'inotify_init1: ' + os.strerror(ctypes.get_errno()))
        self.paths = {}   # wd -> directory path
        self.wds = {}     # directory path -> wd
        self.roots = roots
        self.sentinel = sentinel
        self.quiet = False
        self.cut_seq = -1  # the quiet/loud sentinel applied last (a late event of an older one changes nothing)

    def add(self, path):
        wd = libc.inotify_add_watch(self.fd, path, MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err not in (2, 20):  # gone (ENOENT) or no longer a directory (ENOTDIR): its own event says so
                emit(b'E', b'cannot watch ' + path + b': ' + os.strerror(err).encode())
            return False
        old = self.paths.get(wd)
        if old is not None and old != path:
            self.wds.pop(old, None)
        self.paths[wd] = path
        self.wds[path] = wd
        return True

    def add_tree(self, top, report, seen=None):
        """Watches top and every directory under it; with report, says C for everything found (it may be new)."""
        stack = [top]
        while stack:
            d = stack.pop()
            if not self.add(d):
                continue
            if seen is not None:
                seen.add(d)
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                if d in self.roots and e.name == STAGING:
                    continue
                p = os.path.join(d, e.name)
                if report and not self.quiet:
                    emit(b'C', p)
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(p)
                except OSError:
                    pass

    def cut(self, name):
        stem, dot, kind = name.rpartition(b'.')
        if not dot or kind not in (b'on', b'off'):
            return
        try:
            seq = int(stem.rpartition(b'-')[2])
        except ValueError:
            return
        if seq > self.cut_seq:
            self.cut_seq = seq
            self.quiet = kind == b'off'

    def rewatch(self):
        """After an overflow: the dropped events may have made directories that have no watch yet, or removed
        watched ones. Every directory is watched again (the same watch if it had one), and the rest forgotten."""
        seen = set()
        for r in self.roots:
            self.add_tree(r, False, seen)
        for p in [p for p in self.wds if p not in seen and p != self.sentinel]:
            wd = self.wds.pop(p)
            self.paths.pop(wd, None)
            libc.inotify_rm_watch(self.fd, wd)
        emit(b'W', str(len(self.wds)).encode())
        # A sentinel's own event may have been dropped: the agent removes each once it has seen it.
        if self.sentinel is not None:
            try:
                names = os.listdir(self.sentinel)
            except OSError:
                names = []
            for name in names:
                self.cut(os.fsencode(name))

    def forget_tree(self, top):
        prefix = top + b'/'
        for p in [p for p in self.wds if p == top or p.startswith(prefix)]:
            wd = self.wds.pop(p)
            self.paths.pop(wd, None)
            libc.inotify_rm_watch(self.fd, wd)

    def root_of(self, path):
        for r in self.roots:
            if path == r or path.startswith(r + b'/'):
                return r
        return None

    def handle(self, buf):
        at = 0
        while at + HEADER.size <= len(buf):
            wd, mask, _cookie, length = HEADER.unpack_from(buf, at)
            name = buf[at + HEADER.size:at + HEADER.size + length].rstrip(b'\0')
            at += HEADER.size + length
            if mask & IN_Q_OVERFLOW:
                # Watches first, then the word: whatever changes after the agent hears O is either seen by its
                # walk of the tree or reported by a watch that exists by then.
                self.rewatch()
                emit(b'O')
                continue
            d = self.paths.get(wd)
            if mask & IN_IGNORED:
                if d is not None:
                    self.paths.pop(wd, None)
                    if self.wds.get(d) == wd:
                        del self.wds[d]
                continue
            if d is None:
                continue
            if d == self.sentinel:
                if name:
                    # The file's creation is the cut: it happened inside the agent's call.
                    if mask & IN_CREATE:
                        self.cut(name)
                    emit(b'S', name)
                continue
            if d in self.roots and name == STAGING:
                continue
            path = os.path.join(d, name) if name else d
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                if d in self.roots and not self.quiet:
                    emit(b'C', d)
                continue
            if not self.quiet:
                emit(b'C', path)
            if mask & IN_ISDIR:
                if mask & (IN_MOVED_FROM | IN_DELETE):
                    self.forget_tree(path)
                elif mask & (IN_CREATE | IN_MOVED_TO):
                    self.add_tree(path, True)
                    emit(b'W', str(len(self.wds)).encode())


def main(argv):
    sentinel = None
    quiet = False
    roots = []
    i = 0
    while i < len(argv):
        if argv[i] == '--sentinel':
            sentinel = os.path.abspath(argv[i + 1]).encode()
            i += 2
        elif argv[i] == '--quiet':
            quiet = True
            i += 1
        else:
            roots.append(os.path.abspath(argv[i]).encode())
            i += 1
    w = Watcher(roots, sentinel)
    w.quiet = quiet
    for r in roots:
        w.add_tree(r, False)
    if sentinel is not None:
        w.add(sentinel)
    emit(b'W', str(len(w.wds)).encode())
    emit(b'R')
    out.flush()
    stdin = sys.stdin.buffer.fileno()
    while True:
        ready, _, _ = select.select([w.fd, stdin], [], [])
        if stdin in ready:
            said = os.read(stdin, 4096)
            if not said:
                return 0
            # 'L': report changes from now on (the agent could not write its sentinel).
            if b'L' in said:
                w.quiet = False
        if w.fd in ready:
            w.handle(os.read(w.fd, 1 << 20))
            out.flush()


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
