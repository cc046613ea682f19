"""CPU time from Linux /proc, for the benchmarks' cost-per-operation figures: what a
process group, one process or the whole machine has used so far. Cost per operation is
the figure that other work on the machine changes least (throughput it changes a lot)."""

from __future__ import annotations

import os
from pathlib import Path


def _fields(stat: Path) -> list[str] | None:
    try:
        # After the command, in parentheses: state, ppid, pgrp, ..., utime (12th),
        # stime (13th), cutime and cstime (14-15th: children it has reaped).
        return stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None  # the process has gone


def group_cpu_seconds(leader: int) -> float:
    """CPU time of a process group: its live processes, and the children they have
    reaped (a forking server's or worker's finished children count too)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _fields(stat)
        if fields is not None and int(fields[2]) == leader:
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """CPU time of one process (0 once it has gone)."""
    fields = _fields(Path(f"/proc/{pid}/stat"))
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time used by everything on the machine, all cores (/proc/stat): per
    operation, the budget that decides the rate the cores can sustain."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
