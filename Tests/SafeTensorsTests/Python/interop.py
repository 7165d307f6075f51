"""Interoperability probe driven by PythonInteropTests.swift.

Usage:
    interop.py check-ours PATH    verify the file our Swift writer produced (expectations mirror the Swift test)
    interop.py write-theirs PATH  write a file with the reference safetensors package for the Swift reader

Exits non-zero with a message on the first mismatch.
"""
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

def fail(message):
    print("interop.py: " + message, file=sys.stderr)
    sys.exit(1)

def expect_equal(what, actual, expected):
    if actual != expected:
        fail(f"{what}: got {actual!r}, expected {expected!r}")

def expect_array(name, array, dtype, shape, values):
    expect_equal(f"{name} dtype", array.dtype, np.dtype(dtype))
    expect_equal(f"{name} shape", array.shape, shape)
    wanted = np.array(values, dtype=dtype).reshape(shape)
    if not np.array_equal(array, wanted):
        fail(f"{name} values: got {array.ravel().tolist()!r}, expected {wanted.ravel().tolist()!r}")

def check_ours(path):
    tensors = load_file(path)
    expect_equal("tensor names", sorted(tensors), sorted(["weights", "half", "labels", "ids", "empty", "ñame/😀"]))
    expect_array("weights", tensors["weights"], np.float32, (2, 3), [i * 0.25 - 1 for i in range(6)])
    expect_array("half", tensors["half"], np.float16, (4,), [0.5, -1.0, 2048.0, 0.0999755859375])
    expect_array("labels", tensors["labels"], np.uint8, (5,), [0, 1, 2, 9, 255])
    expect_array("ids", tensors["ids"], np.int64, (2, 1), [-7, 1 << 40])
    expect_array("empty", tensors["empty"], np.float32, (0, 3), [])
    expect_array("ñame/😀", tensors["ñame/😀"], np.int32, (), 123)
    with safe_open(path, framework="np") as handle:
        expect_equal("metadata", handle.metadata(), {"format": "supernet", "note": 'quote " and \\ and ü'})

def write_theirs(path):
    tensors = {
        "f64": np.array([[1.5, -2.25], [1e300, 0.0]], dtype=np.float64),
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4) / 8,
        "f16": np.array([1.0, -0.5, 65504.0], dtype=np.float16),
        "i16": np.array([-32768, 32767], dtype=np.int16),
        "i32": np.array([[-1], [2]], dtype=np.int32),
        "u8": np.array([0, 128, 255], dtype=np.uint8),
        "flags": np.array([True, False, True], dtype=np.bool_),
        "zero": np.zeros((0, 5), dtype=np.float32),
    }
    save_file(tensors, path, metadata={"producer": "python", "epoch": "3"})

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("check-ours", "write-theirs"):
        fail("usage: interop.py check-ours|write-theirs PATH")
    (check_ours if sys.argv[1] == "check-ours" else write_theirs)(sys.argv[2])
    print("ok")
