"""The machine a figure was measured on, named in every result and in the plot's title."""

import os


def machine_name():
    """`$RACE_MACHINE` if set, else the CPU's model name, family and model from /proc/cpuinfo and
    the number of CPUs this process may use (e.g. `AMD EPYC (family 25, model 17), 2 CPUs`)."""
    if os.environ.get("RACE_MACHINE"):
        return os.environ["RACE_MACHINE"]
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name", "unknown CPU")
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cpus} CPUs"
