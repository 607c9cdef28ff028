"""The base of every DataModule here: splits held in memory as tensors, batches cut from them."""

import lightning as L
import torch

from src.data.in_memory import Batches, EpochShuffleSampler, TensorSplit
from src.utils.errors import DataError


class TensorDataModule(L.LightningDataModule):
    """A subclass sets `input_shape` and `num_classes` (None for regression, whose targets
    are float columns) and implements `make_splits()`.

    `standardize` rescales each input feature (and, for regression, the target)
    to mean 0 and std 1 using the training split's statistics; `x_mean`, `x_std`,
    `y_mean`, `y_std` keep them so figures and reports can go back to the
    original units. `repeat` makes one epoch that many passes over the training
    split: full-batch gradient descent takes one step per pass, and Lightning's
    per-epoch work (validation, logging) would otherwise dominate a 100,000-step run.

    `device`: where the batches are cut. `auto` copies each split once to the
    device the model trains on (the GPU), so no batch crosses the bus; `cpu`
    keeps them on the host and Lightning copies every batch. The splits
    themselves (`data_train`, ...) stay on the CPU for figures and reports.
    """

    input_shape: tuple[int, ...]
    num_classes: int | None
    classes: list[str] | None = None  # a name per class, for predictions and figures
    feature_names: list[str] | None = None  # a name per input feature of a feature-vector set; None: x1, x2, ...
    target_name: str = "y"  # a regression set's target

    def __init__(self, batch_size: int = 32, eval_batch_size: int = 1000, standardize: bool = False, seed: int = 0,
                 repeat: int = 1, device: str = "auto"):
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.standardize, self.seed, self.repeat, self.device = standardize, seed, repeat, device
        self.data_train = self.data_val = self.data_test = None
        self._on_device: dict[int, TensorSplit] = {}

    def make_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{"train": (x, y), "test": (x, y)} and optionally "val"; without one, validation uses train."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        splits = self.make_splits()
        x, y = splits["train"]
        shape = x.shape[1:]
        self.x_mean, self.x_std = torch.zeros(shape), torch.ones(shape)
        self.y_mean, self.y_std = torch.zeros(1), torch.ones(1)
        if self.standardize:
            # A constant feature (an image's always-black corner) stays as it is, not 0 / 0.
            self.x_mean, self.x_std = x.mean(0), torch.where(x.std(0) > 0, x.std(0), 1.0)
            if self.num_classes is None:
                self.y_mean, self.y_std = y.mean(0), y.std(0)
            splits = {name: ((x - self.x_mean) / self.x_std, y if self.num_classes is not None
                             else (y - self.y_mean) / self.y_std) for name, (x, y) in splits.items()}
        self.data_train, self.data_test = TensorSplit(*splits["train"]), TensorSplit(*splits["test"])
        self.data_val = TensorSplit(*splits["val"]) if "val" in splits else self.data_train

    def input_scaling(self) -> tuple[float, float]:
        """(shift, scale) that make_splits applies to the raw inputs before any standardisation:
        x -> (x - shift) / scale (MNIST's normalisation); none here."""
        return 0.0, 1.0

    def names(self) -> list[str]:
        """The input features' names: a CSV of inputs to predict from has these columns."""
        return list(self.feature_names or (f"x{i + 1}" for i in range(self.input_shape[0])))

    def state_dict(self) -> dict:
        """What it takes to feed the trained network raw inputs and read its outputs in the data's units,
        stored by Lightning in every checkpoint (src.predict and src.export need no data, only the
        checkpoint). `input_mean`/`input_std`: raw inputs -> what the network saw, normalisation and
        standardisation in one; `target_mean`/`target_std`: a regression output -> the data's units.
        (Nothing to restore on resume: setup() computes the same statistics again.)"""
        if self.data_train is None:
            return {}
        shift, scale = self.input_scaling()
        state = {"input_mean": shift + scale * self.x_mean, "input_std": scale * self.x_std,
                 "target_mean": self.y_mean, "target_std": self.y_std, "classes": self.classes}
        if len(self.input_shape) == 1:
            state["feature_names"], state["target_name"] = self.names(), self.target_name
        return state

    def original_units(self, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (w, b) of a linear model fitted on standardized data, for the data as given."""
        w_orig = w * self.y_std / self.x_std.unsqueeze(1)
        return w_orig, self.y_mean + self.y_std * b - (self.x_mean @ w_orig)

    def _batches(self, stage: str, batch_size: int, sampler=None, pad: bool = True, count_real: bool = False) -> Batches:
        split = getattr(self, f"data_{stage}")
        trainer = self.trainer
        if self.device == "auto" and trainer is not None:
            key = id(split)  # data_val may be data_train: one copy
            if key not in self._on_device:  # once per split, not per batch
                self._on_device[key] = split.to(trainer.strategy.root_device)
            split = self._on_device[key]
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        batches = Batches(split, batch_size, sampler, rank, world_size, pad, count_real and world_size > 1)
        limit = getattr(trainer, f"limit_{stage}_batches", None)
        if isinstance(limit, float) and 0 < limit < 1 and int(len(batches) * limit) == 0:  # Lightning: "0.1 * 6 < 1"
            size = "data.batch_size" if stage == "train" else "data.eval_batch_size"
            raise DataError(
                f"trainer.limit_{stage}_batches={limit} keeps no batch: the {stage} split has {len(batches)} "
                f"batch{'es' if len(batches) != 1 else ''} of {batches.batch_size} ({size}). Use a fraction of at "
                f"least {1 / len(batches):.2g}, a number of batches (trainer.limit_{stage}_batches=1), or a "
                f"smaller {size}.")
        return batches

    def train_dataloader(self) -> Batches:
        # After a resume Lightning draws the first batch before it calls set_epoch, so start the
        # sampler at the epoch about to run: a resumed run then sees the batches of an uninterrupted one.
        epoch = self.trainer.fit_loop.epoch_progress.current.processed if self.trainer else 0
        sampler = EpochShuffleSampler(len(self.data_train), self.seed, epoch, repeat=self.repeat)
        return self._batches("train", self.batch_size, sampler)

    def val_dataloader(self) -> Batches:
        # Under DDP validation runs through the DDP wrapper, whose forward syncs buffers: every rank needs as
        # many batches, so the ranks are padded, and the padding is counted out of the metrics.
        return self._batches("val", self.eval_batch_size, count_real=True)

    def test_dataloader(self) -> Batches:
        # Testing does not go through the DDP wrapper: each test sample is seen once, on one rank.
        return self._batches("test", self.eval_batch_size, pad=False)
