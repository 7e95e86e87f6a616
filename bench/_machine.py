"""The machine a benchmark ran on, recorded next to its numbers (shared by the bench scripts)."""

from __future__ import annotations

import importlib
import os
import platform


def machine_info(*packages: str, **extra: object) -> dict:
    """Python, OS, CPU, the versions of ``packages``, then ``extra``, then the load average.

    Call it when the timings start: ``load_average_at_start`` is the 1-minute load average of
    that moment (absent where the OS has none), the first thing to check when ratios look odd
    on a shared machine. A package that is not installed is recorded as ``None``.
    """
    info: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        # platform.processor() is empty on Linux: the CPU's model name tells machines apart
        "processor": platform.processor() or _cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    for name in packages:
        try:
            module = importlib.import_module(name)
        except ImportError:
            info[name] = None
        else:
            info[name] = getattr(module, "__version__", "unknown")
    info.update(extra)
    try:
        info["load_average_at_start"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


def _cpu_model() -> str:
    """The first ``model name`` of /proc/cpuinfo ("" where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
