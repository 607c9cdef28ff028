"""Wall time and throughput of each training epoch, validation excluded, logged as time/*."""

from time import perf_counter

import torch
from lightning.pytorch import Callback


def _now(pl_module) -> float:
    """The clock once the device has finished the work queued so far (GPU work runs asynchronously)."""
    if pl_module.device.type == "cuda":
        torch.cuda.synchronize(pl_module.device)
    return perf_counter()


class EpochTimer(Callback):
    def __init__(self):
        self.history: list[dict[str, float]] = []  # one entry per epoch, read by scripts/benchmark.py

    def on_train_epoch_start(self, trainer, pl_module):
        self._start, self._val_seconds, self._samples = _now(pl_module), 0.0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._samples += len(batch[0]) * trainer.world_size  # every rank trains on a batch this size

    def on_validation_epoch_start(self, trainer, pl_module):
        self._val_start = _now(pl_module)

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self._val_seconds += _now(pl_module) - self._val_start

    def on_train_epoch_end(self, trainer, pl_module):
        # Lightning runs the epoch-end validation before this hook: subtract it.
        seconds = _now(pl_module) - self._start - self._val_seconds
        self.history.append({"train_s": seconds, "val_s": self._val_seconds, "samples": self._samples})
        pl_module.log_dict({"time/train_epoch_s": seconds, "time/train_samples_per_s": self._samples / seconds})
