"""bort.cpu_features: ISA detection from /proc/cpuinfo text."""
import pytest

from bort.cpu_features import FEATURES, cpu_features, describe_cpu, isa_level, isa_summary, read_cpuinfo

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Example Xeon @ 2.00GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni {extra}
bogomips\t: 4000.00

processor\t: 1
model name\t: Example Xeon @ 2.00GHz
flags\t\t: fpu sse2
"""


@pytest.mark.parametrize("extra, level", [
    ("", "avx512_vnni"),
    ("avx512_bf16", "avx512_bf16"),
    ("avx512_bf16 amx_tile amx_bf16 amx_int8", "amx"),
])
def test_levels_from_cpuinfo(tmp_path, extra, level):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(extra=extra))
    model, flags = read_cpuinfo(str(path))
    assert model == "Example Xeon @ 2.00GHz"
    assert "avx512_vnni" in flags and "fma" in flags  # the first processor's line
    description = describe_cpu(str(path))
    assert description["isa"] == level
    assert description["features"]["avx512_bf16"] == ("avx512_bf16" in extra)
    assert description["features"]["amx_int8"] == ("amx_int8" in extra)


def test_lower_levels_and_summary():
    assert isa_level(cpu_features({"avx2", "fma"})) == "avx2"
    assert isa_level(cpu_features({"avx2", "avx512f"})) == "avx512"
    assert isa_level(cpu_features({"sse2"})) == "baseline"
    # AMX without its bf16 half is not the AMX level
    assert isa_level(cpu_features({"avx512f", "amx_int8"})) == "avx512"
    summary = isa_summary(dict(isa="avx2", features=cpu_features({"avx2"})))
    assert summary == "avx2 (avx2; no avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8)"


def test_missing_file_detects_nothing(tmp_path):
    description = describe_cpu(str(tmp_path / "absent"))
    assert description["isa"] == "baseline" and not any(description["features"].values())
    assert set(description["features"]) == set(FEATURES)


def test_this_machine_is_read():
    model, flags = read_cpuinfo()
    assert flags and model  # a Linux x86-64 machine lists its flags
