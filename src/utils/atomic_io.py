"""Checkpoints are never half-written: each is written to a temporary file beside it, then renamed.

Lightning's own `_atomic_save` writes through an fsspec transaction whose
temporary file lives in the system temp dir; when that is another file system
(tmpfs, a cluster's scratch), the commit copies the bytes into the checkpoint
in place, so a kill during the copy leaves a truncated `last.ckpt`, and
nothing is flushed to disk. Here the temporary file is in the checkpoint's own
folder, flushed, and `os.replace`d over the old file: a reader sees the old
checkpoint or the new one, never part of one.
"""

import os
import tempfile
from pathlib import Path

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from src.utils.errors import CheckpointError


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):  # remote stores: Lightning's own way
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A dot name that does not end in .ckpt: never taken for a checkpoint if a kill leaves it behind.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a checkpoint is an ordinary file
            os.replace(tmp, path)
        except BaseException as e:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(e, OSError):  # e.g. a full disk: the previous checkpoint is still whole
                raise CheckpointError(f"could not write the checkpoint {path}: {e.strerror or e}; "
                                      f"the previous {path.name}, if any, is intact") from e
            raise
        _fsync_dir(path.parent)  # makes the rename itself survive a power cut


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
