"""How many CPUs this process can use: the cores it may run on, capped by
its cgroup's CPU quota.

os.sched_getaffinity sees cpusets only. A Kubernetes pod with
`limits.cpu: 4` on a 96-core node (or `docker run --cpus 4`) is limited
by a CFS quota instead: affinity says 96, and 96 prepare workers would
share 4 CPUs' worth of time, each holding a tokenizer and a chunk in
memory, throttled. The quota is read as Go's runtime reads it for
GOMAXPROCS: the process's cgroup in /proc/self/cgroup, its hierarchy's
mount in /proc/self/mountinfo, and the smallest quota from that cgroup up
to the mount's root (cgroup v2 cpu.max; v1 cpu.cfs_quota_us and
cpu.cfs_period_us).
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def available(proc: str = "/proc/self") -> int:
    """Cores this process may run on, capped by its CPU quota (rounded
    up: a quota of 1.5 CPUs keeps two workers busy); at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
    q = quota(proc)
    if q is not None:
        n = min(n, math.ceil(q))
    return max(1, n)


def quota(proc: str = "/proc/self") -> float | None:
    """The CPU quota of the process's cgroup in CPUs (2.5: two and a half
    CPUs' time per period), or None where there is none or it cannot be
    read (no cgroup file system, another OS)."""
    try:
        cgroups = Path(proc, "cgroup").read_text().splitlines()
        mounts = [_mount(line) for line in Path(proc, "mountinfo").read_text().splitlines()]
    except OSError:
        return None
    limits = []
    for line in cgroups:
        hier, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hier == "0" and controllers == "":
            d = _dir(mounts, path, lambda fstype, opts: fstype == "cgroup2")
            if d is not None:
                limits.append(_walk(d, _v2))
        elif "cpu" in controllers.split(","):
            d = _dir(mounts, path, lambda fstype, opts: fstype == "cgroup" and "cpu" in opts.split(","))
            if d is not None:
                limits.append(_walk(d, _v1))
    limits = [x for x in limits if x is not None]
    return min(limits) if limits else None


def _mount(line: str) -> tuple[str, str, str, str]:
    """(root within the hierarchy, mount point, fstype, super options) of a
    mountinfo line: `ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - FSTYPE
    SOURCE SUPEROPTS`."""
    left, _, right = line.partition(" - ")
    f, r = left.split(), right.split()
    if len(f) < 5 or len(r) < 3:
        return "", "", "", ""
    return _unescape(f[3]), _unescape(f[4]), r[0], r[2]


def _unescape(s: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for esc, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        s = s.replace(esc, ch)
    return s


def _dir(mounts, path: str, wanted) -> tuple[Path, Path] | None:
    """(the cgroup's folder, the mount point) for a cgroup path, through the
    mount of its hierarchy whose root holds it."""
    for root, point, fstype, opts in mounts:
        if not point or not wanted(fstype, opts):
            continue
        rel = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
        if rel == ".":
            rel = ""
        if rel.startswith(".."):
            continue  # the cgroup is outside what this mount shows
        return Path(point, rel), Path(point)
    return None


def _walk(dirs: tuple[Path, Path], read) -> float | None:
    """The smallest quota from the cgroup's folder up to the mount point: a
    parent's limit binds its children."""
    d, top = dirs
    best = None
    while True:
        q = read(d)
        if q is not None and (best is None or q < best):
            best = q
        if d == top or d.parent == d:
            return best
        d = d.parent


def _v2(d: Path) -> float | None:
    try:
        f = Path(d, "cpu.max").read_text().split()
    except OSError:
        return None
    if len(f) != 2 or f[0] == "max":
        return None
    return _ratio(f[0], f[1])


def _v1(d: Path) -> float | None:
    try:
        q = Path(d, "cpu.cfs_quota_us").read_text().strip()
        p = Path(d, "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return _ratio(q, p)


def _ratio(q: str, p: str) -> float | None:
    try:
        quota_us, period_us = int(q), int(p)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:  # -1: no limit (v1)
        return None
    return quota_us / period_us
