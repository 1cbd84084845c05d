"""Lambda's limits on this machine: a cgroup v1 memory limit and a CPU quota for one worker process.

Lambda runs a function in a memory cgroup of the configured size (an execution environment that
goes over it is killed) and gives it CPU in proportion to memory: one vCPU at 1,769 MB (AWS docs,
"Configure Lambda function memory"). :class:`LambdaLimits` makes one child cgroup in each of the
``memory`` and ``cpu`` hierarchies: ``memory.limit_in_bytes`` = the memory size in MiB (and the
same ``memory.memsw.limit_in_bytes`` so swap cannot hide an overrun), ``cpu.cfs_quota_us`` =
``memory / 1,769`` of ``cpu.cfs_period_us``. The worker joins both before it executes Python
(``preexec``), so every page it ever touches is charged to the cgroup; the peak is
``memory.max_usage_in_bytes`` (RSS plus the page cache the process brings in, as Lambda counts).

The memory cgroup is made under this process's own memory cgroup (so the limits of whatever runs
the benchmark still apply); the CPU one under the hierarchy's root. :func:`unavailable` says why
cgroups cannot be used here (not root, cgroup v2 only, read-only), and the benchmark then skips
these measurements loudly.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

MiB = 1 << 20
ROOT = Path("/sys/fs/cgroup")
FULL_VCPU_MB = 1769
CFS_PERIOD_US = 100_000


def _own_path(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise RuntimeError(f"no {controller} cgroup v1 hierarchy in /proc/self/cgroup")


def unavailable() -> str | None:
    """Why the cgroup measurements cannot run here, or None when they can."""
    for controller in ("memory", "cpu"):
        base = ROOT / controller
        if not (base / "cgroup.procs").exists():
            return f"no cgroup v1 '{controller}' hierarchy at {base}"
        try:
            parent = base / _own_path(controller).lstrip("/")
            probe = parent / f"bench-probe-{uuid.uuid4().hex[:8]}"
            probe.mkdir()
            probe.rmdir()
        except (OSError, RuntimeError) as error:
            return f"cannot create a {controller} cgroup ({error})"
    return None


def cpu_share(memory_mb: int) -> float:
    """Lambda's CPU for a memory size, in vCPUs (linear, 1 at 1,769 MB)."""
    return memory_mb / FULL_VCPU_MB


class LambdaLimits:
    """A memory limit of ``memory_mb`` MiB and, if ``cpu``, a CPU quota of ``memory_mb / 1769`` vCPU."""

    def __init__(self, memory_mb: int, *, cpu: bool = True, memory: bool = True) -> None:
        self.memory_mb = memory_mb
        name = f"bench-lambda-{memory_mb}-{uuid.uuid4().hex[:8]}"
        self.memory_dir = ROOT / "memory" / _own_path("memory").lstrip("/") / name if memory else None
        self.cpu_dir = ROOT / "cpu" / _own_path("cpu").lstrip("/") / name if cpu else None
        if self.memory_dir is not None:
            self.memory_dir.mkdir()
            limit = str(memory_mb * MiB)
            (self.memory_dir / "memory.limit_in_bytes").write_text(limit)
            memsw = self.memory_dir / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text(limit)
        if self.cpu_dir is not None:
            self.cpu_dir.mkdir()
            (self.cpu_dir / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (self.cpu_dir / "cpu.cfs_quota_us").write_text(str(int(cpu_share(memory_mb) * CFS_PERIOD_US)))

    def preexec(self) -> None:
        """Run in the child between fork and exec: join the cgroups before Python starts."""
        pid = str(os.getpid())
        for directory in (self.memory_dir, self.cpu_dir):
            if directory is not None:
                (directory / "cgroup.procs").write_text(pid)

    def reset_peak(self) -> None:
        if self.memory_dir is not None:
            (self.memory_dir / "memory.max_usage_in_bytes").write_text("0")

    def _read(self, name: str) -> int:
        assert self.memory_dir is not None
        return int((self.memory_dir / name).read_text().split()[0])

    def usage(self) -> int:
        return self._read("memory.usage_in_bytes")

    def peak(self) -> int:
        return self._read("memory.max_usage_in_bytes")

    def failures(self) -> int:
        """How often the limit was hit (reclaim or OOM), ``memory.failcnt``."""
        return self._read("memory.failcnt")

    def oom_kills(self) -> int:
        assert self.memory_dir is not None
        for line in (self.memory_dir / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def throttled_s(self) -> float:
        if self.cpu_dir is None:
            return 0.0
        for line in (self.cpu_dir / "cpu.stat").read_text().splitlines():
            if line.startswith("throttled_time "):
                return int(line.split()[1]) / 1e9
        return 0.0

    def close(self) -> None:
        """Remove the cgroups (their processes must have exited)."""
        for directory in (self.memory_dir, self.cpu_dir):
            if directory is not None and directory.exists():
                with contextlib.suppress(OSError):
                    directory.rmdir()
