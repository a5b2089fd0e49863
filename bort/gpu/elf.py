"""The two facts of a shared library that decide its load order: its SONAME and the SONAMEs it needs (DT_NEEDED).

Read from the ELF program headers with seeks, so a 1 GB libmxnet.so costs a few small reads, and without
`readelf` (binutils is not on every GPU image).
"""
import struct
from dataclasses import dataclass

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME = 0, 1, 5, 10, 14


@dataclass(frozen=True)
class DynamicInfo:
    soname: str | None
    needed: tuple


class NotElfError(ValueError):
    """The file is not an ELF shared object this reader understands."""


def _layout(ident):
    if ident[:4] != b"\x7fELF":
        raise NotElfError("no ELF magic")
    endian = {1: "<", 2: ">"}.get(ident[5])
    if ident[4] == 2:
        return endian, "Q", 0x20, 0x36, "IIQQQQQQ", ("type", "flags", "offset", "vaddr", "paddr", "filesz", "memsz",
                                                    "align"), "q"
    if ident[4] == 1:
        return endian, "I", 0x1C, 0x2A, "IIIIIIII", ("type", "offset", "vaddr", "paddr", "filesz", "memsz", "flags",
                                                     "align"), "i"
    raise NotElfError(f"unknown ELF class {ident[4]}")


def _read(handle, offset, size):
    handle.seek(offset)
    data = handle.read(size)
    if len(data) != size:
        raise NotElfError("truncated file")
    return data


def read_dynamic(path):
    """SONAME and DT_NEEDED entries of the ELF file at `path`; raises NotElfError for anything else."""
    with open(path, "rb") as handle:
        endian, word, phoff_at, phentsize_at, ph_format, ph_fields, signed_word = _layout(_read(handle, 0, 16))
        if endian is None:
            raise NotElfError("unknown byte order")
        header = _read(handle, 0, 0x40)
        (phoff,) = struct.unpack_from(endian + word, header, phoff_at)
        phentsize, phnum = struct.unpack_from(endian + "HH", header, phentsize_at)
        segments = []
        for index in range(phnum):
            raw = _read(handle, phoff + index * phentsize, struct.calcsize(endian + ph_format))
            segments.append(dict(zip(ph_fields, struct.unpack(endian + ph_format, raw))))
        dynamic = next((s for s in segments if s["type"] == PT_DYNAMIC), None)
        if dynamic is None:
            return DynamicInfo(None, ())  # a static object needs nothing
        entry = endian + signed_word + word
        entry_size = struct.calcsize(entry)
        table = _read(handle, dynamic["offset"], dynamic["filesz"])
        tags = {}
        needed_offsets = []
        for start in range(0, len(table) - entry_size + 1, entry_size):
            tag, value = struct.unpack_from(entry, table, start)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                needed_offsets.append(value)
            else:
                tags.setdefault(tag, value)
        if DT_STRTAB not in tags:
            raise NotElfError("dynamic section without a string table")
        # DT_STRTAB is an address in memory: map it back to the file through the segment that loads it.
        address = tags[DT_STRTAB]
        loads = [s for s in segments if s["type"] == PT_LOAD and s["vaddr"] <= address < s["vaddr"] + s["filesz"]]
        if not loads:
            raise NotElfError("string table outside every loaded segment")
        strtab_offset = address - loads[0]["vaddr"] + loads[0]["offset"]
        strings = _read(handle, strtab_offset, tags.get(DT_STRSZ, 0))

    def name_at(offset):
        return strings[offset:strings.index(b"\0", offset)].decode("utf-8", "replace")

    soname = name_at(tags[DT_SONAME]) if DT_SONAME in tags else None
    return DynamicInfo(soname, tuple(name_at(offset) for offset in needed_offsets))
