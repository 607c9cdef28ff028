"""Read IDX files (the MNIST file format), plain or gzip-compressed, refusing bad ones.

torchvision's own reader only asserts on a size mismatch; a user with a
half-downloaded file deserves an error that says which file and what is wrong.
"""

import gzip
import math
import struct
import zlib
from pathlib import Path

import torch

from src.utils.errors import DataError

_UBYTE = 0x08


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """Return the uint8 tensor stored in an IDX file with `ndim` dimensions."""
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataError(f"cannot read {path}: {e} (truncated or corrupt file; delete it and fetch it again)") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != _UBYTE or raw[3] != ndim:
        raise DataError(f"{path}: expected {ndim}-D unsigned bytes, header says type 0x{raw[2]:02x} with {raw[3]} dims")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise DataError(
            f"{path}: header promises shape {tuple(shape)} ({expected} bytes) but the file holds {len(raw)} bytes "
            "(truncated or corrupt; delete it and fetch it again)"
        )
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8, offset=header).reshape(shape)


def write_idx(path: Path, data: torch.Tensor) -> None:
    """Write a uint8 tensor as IDX (gzip-compressed if `path` ends in .gz); used to make test data."""
    data = data.to(torch.uint8).contiguous()
    payload = bytes([0, 0, _UBYTE, data.dim()]) + struct.pack(f">{data.dim()}I", *data.shape) + data.numpy().tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
