#!/usr/bin/env python3
"""Writes N small CT studies (one 16x16 instance each) as Part 10 files, for
the QIDO benchmark's study list: distinct patients with UTF-8 Chinese
names, dates spread over two years, descriptions and accession numbers.
No third-party packages: the few elements are written by hand.

usage: make_studies.py OUTDIR N
"""
import os
import struct
import sys

SURNAMES = [("Zhang", "张"), ("Wang", "王"), ("Li", "李"), ("Zhao", "赵"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"), ("Huang", "黄")]
GIVEN = [("Wei", "伟"), ("Fang", "芳"), ("Na", "娜"), ("Min", "敏"), ("Jing", "静"), ("Lei", "磊"), ("Qiang", "强"), ("Yan", "艳"), ("Jun", "军")]
DESCRIPTIONS = ["胸部CT平扫", "头颅CT平扫", "腹部CT增强", "胸部正位片", "腰椎MR"]
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
ROOT = "2.25.4242"


def element(group, elem, vr, value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    if vr in ("OB", "OW", "SQ", "UN", "UT", "UC"):
        return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value


def study(i):
    family, given = SURNAMES[i % len(SURNAMES)], GIVEN[(i // len(SURNAMES)) % len(GIVEN)]
    name = f"{family[0]}^{given[0]}{i}={family[1]}^{given[1]}{i}"
    day = i % 730
    year, month, dom = 2025 + day // 365, 1 + (day % 365) // 31 % 12, 1 + (day % 31) % 28
    study_uid, series_uid, sop_uid = f"{ROOT}.{i}.1", f"{ROOT}.{i}.2", f"{ROOT}.{i}.3"
    pixels = bytes((x * 7 + i) % 256 for x in range(16 * 16 * 2))
    data = b"".join([
        element(0x0008, 0x0005, "CS", "ISO_IR 192"),
        element(0x0008, 0x0016, "UI", CT_IMAGE),
        element(0x0008, 0x0018, "UI", sop_uid),
        element(0x0008, 0x0020, "DA", f"{year}{month:02}{dom:02}"),
        element(0x0008, 0x0030, "TM", f"{8 + i % 10:02}{i % 60:02}00"),
        element(0x0008, 0x0050, "SH", f"ACC{i:07}"),
        element(0x0008, 0x0060, "CS", "CT"),
        element(0x0008, 0x0090, "PN", "Zhou^Yi=周^医"),
        element(0x0008, 0x1030, "LO", DESCRIPTIONS[i % len(DESCRIPTIONS)]),
        element(0x0010, 0x0010, "PN", name),
        element(0x0010, 0x0020, "LO", f"P{i:07}"),
        element(0x0010, 0x0030, "DA", f"{1940 + i % 70}0101"),
        element(0x0010, 0x0040, "CS", "MF"[i % 2]),
        element(0x0020, 0x000D, "UI", study_uid),
        element(0x0020, 0x000E, "UI", series_uid),
        element(0x0020, 0x0010, "SH", str(i % 10000)),
        element(0x0020, 0x0011, "IS", "1"),
        element(0x0020, 0x0013, "IS", "1"),
        element(0x0028, 0x0002, "US", struct.pack("<H", 1)),
        element(0x0028, 0x0004, "CS", "MONOCHROME2"),
        element(0x0028, 0x0010, "US", struct.pack("<H", 16)),
        element(0x0028, 0x0011, "US", struct.pack("<H", 16)),
        element(0x0028, 0x0100, "US", struct.pack("<H", 16)),
        element(0x0028, 0x0101, "US", struct.pack("<H", 12)),
        element(0x0028, 0x0102, "US", struct.pack("<H", 11)),
        element(0x0028, 0x0103, "US", struct.pack("<H", 0)),
        element(0x7FE0, 0x0010, "OW", pixels),
    ])
    meta = b"".join([
        element(0x0002, 0x0001, "OB", b"\0\1"),
        element(0x0002, 0x0002, "UI", CT_IMAGE),
        element(0x0002, 0x0003, "UI", sop_uid),
        element(0x0002, 0x0010, "UI", EXPLICIT_LE),
        element(0x0002, 0x0012, "UI", "1.2.826.0.1.3680043.10.1"),
    ])
    group_length = element(0x0002, 0x0000, "UL", struct.pack("<I", len(meta)))
    return b"\0" * 128 + b"DICM" + group_length + meta + data


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    for i in range(n):
        with open(os.path.join(out, f"study{i:05}.dcm"), "wb") as f:
            f.write(study(i))
    print(f"wrote {n} studies into {out}")


if __name__ == "__main__":
    main()
