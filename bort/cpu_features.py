"""The CPU's vector and matrix instruction sets, detected at run time (benchmarks report them on every line;
`predict.py --precision auto` decides by them).

Read from the `flags` line of /proc/cpuinfo (Linux). Elsewhere nothing is detected and every feature reads as
absent, which only makes the choices conservative (float32).
"""
import platform

#: The features that decide which kernels can be fast, in the kernel names' spelling.
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
#: ISA levels from the most capable down: (name, features it needs).
ISA_LEVELS = (
    ("amx", ("amx_bf16", "amx_int8")),
    ("avx512_bf16", ("avx512f", "avx512_bf16")),
    ("avx512_vnni", ("avx512f", "avx512_vnni")),
    ("avx512", ("avx512f",)),
    ("avx2", ("avx2",)),
)


def read_cpuinfo(path="/proc/cpuinfo"):
    """(model name, set of flags) of the first processor listed; ("unknown", set()) where there is no such file."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                    break  # the first processor's flags; every core of a machine has the same
    except OSError:
        pass
    return model, flags


def cpu_features(flags=None):
    """{feature: present} for FEATURES, from `flags` (default: this machine's)."""
    flags = read_cpuinfo()[1] if flags is None else flags
    return {name: name in flags for name in FEATURES}


def isa_level(features):
    """The most capable level of ISA_LEVELS the features allow ('baseline' below AVX2)."""
    for level, needed in ISA_LEVELS:
        if all(features.get(name) for name in needed):
            return level
    return "baseline"


def describe_cpu(path="/proc/cpuinfo"):
    """{'model', 'isa', 'features'} of this machine, for benchmark reports."""
    model, flags = read_cpuinfo(path)
    features = cpu_features(flags)
    return dict(model=model, isa=isa_level(features), features=features)


def isa_summary(description):
    """One short line: 'avx512_vnni (avx2 avx512f avx512_vnni; no avx512_bf16 amx_bf16 amx_int8)'."""
    features = description["features"]
    present = " ".join(name for name in FEATURES if features[name]) or "none"
    absent = " ".join(name for name in FEATURES if not features[name])
    return f"{description['isa']} ({present}" + (f"; no {absent})" if absent else ")")
