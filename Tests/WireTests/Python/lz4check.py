"""LZ4 frame cross-check driven by PythonLZ4Tests.swift, using the reference `lz4` package.

Usage:
    lz4check.py decode IN OUT   decompress the LZ4 frame in file IN, write the bytes to OUT, print frame facts
    lz4check.py encode IN OUT   compress file IN as one LZ4 frame (64 KiB blocks, content checksum) into OUT

Exits non-zero with a message when the frame cannot be read.
"""
import sys

import lz4.frame

def decode(source, target):
    with open(source, "rb") as handle:
        data = handle.read()
    info = lz4.frame.get_frame_info(data)
    decoded = lz4.frame.decompress(data)
    with open(target, "wb") as handle:
        handle.write(decoded)
    print(f"block_size={info['block_size']} content_checksum={info['content_checksum']} "
          f"block_checksum={info.get('block_checksum')} content_size={info['content_size']} "
          f"decoded={len(decoded)}")

def encode(source, target):
    with open(source, "rb") as handle:
        data = handle.read()
    frame = lz4.frame.compress(
        data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, content_checksum=True, store_size=True)
    with open(target, "wb") as handle:
        handle.write(frame)

def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("decode", "encode"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "decode":
        decode(sys.argv[2], sys.argv[3])
    else:
        encode(sys.argv[2], sys.argv[3])

main()
