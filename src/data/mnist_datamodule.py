"""MNIST and Fashion-MNIST: one DataModule for the family, every split held in memory."""

from pathlib import Path

import torch
import torchvision

from src.data.augment import random_shift
from src.data.idx import read_idx
from src.data.in_memory import TensorSplit
from src.data.tensor_datamodule import TensorDataModule
from src.utils.errors import DataError

# name -> (torchvision class, human name, how its images were made from the originals: what
# src.predict does to a user's image). The class fixes the folder (ROOT/<ClassName>/raw), the
# download mirrors and the class names.
DATASETS = {
    "mnist": (torchvision.datasets.MNIST, "MNIST", "digit"),
    "fashion_mnist": (torchvision.datasets.FashionMNIST, "Fashion-MNIST", "object"),
}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class MNISTDataModule(TensorDataModule):
    """28x28 grey images, 10 classes; a seeded validation split carved from train."""

    input_shape = (1, 28, 28)
    num_classes = 10

    def __init__(
        self,
        name: str = "mnist",
        data_dir: str = "data",
        val_fraction: float = 0.1,
        split_seed: int = 42,
        normalize: bool = True,
        mean: float = 0.1307,
        std: float = 0.3081,
        download: bool = True,
        random_shift: int = 0,
        **loader,  # TensorDataModule's batch_size, eval_batch_size, standardize, seed, repeat, device
    ):
        super().__init__(**loader)
        # data_dir is machine-specific: keep it out of the checkpoint so that
        # `src.eval` on another machine uses its own paths.data_dir.
        self.save_hyperparameters(ignore=["data_dir"], logger=False)
        self.data_dir = Path(data_dir)
        self.tv_class, self.title, self.preparation = DATASETS[name]
        self.classes: list[str] = list(self.tv_class.classes)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.tv_class.__name__ / "raw"

    def _find(self, filename: str) -> Path | None:
        for candidate in (self.raw_dir / filename, self.raw_dir / f"{filename}.gz"):
            if candidate.is_file():
                return candidate
        return None

    def _missing(self) -> list[str]:
        return [f for files in SPLIT_FILES.values() for f in files if self._find(f) is None]

    def prepare_data(self) -> None:
        if not self._missing():
            return
        if self.hparams.download:
            try:
                for train in (True, False):
                    self.tv_class(str(self.data_dir), train=train, download=True)
            except Exception as e:  # torchvision raises RuntimeError/URLError/OSError offline
                reason = f"downloading it failed ({type(e).__name__}: {e})"
            else:
                if not self._missing():
                    return
                reason = "the download finished but the files are still missing"
        else:
            reason = "download is off (data.download=false)"
        expected = ", ".join(f for files in SPLIT_FILES.values() for f in files)
        raise DataError(
            f"{self.title} not found in {self.raw_dir}: missing {', '.join(self._missing())}. "
            f"Expected the four files {expected} (plain or .gz), and {reason}. "
            f"Point the project at a folder holding {self.tv_class.__name__}/raw/, e.g. "
            f"`DATA_DIR=/path/to/data` before the command, or `paths.data_dir=/path/to/data` in it."
        )

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        image_file, label_file = (self._find(f) for f in SPLIT_FILES[split])
        if image_file is None or label_file is None:
            self.prepare_data()  # raises the explanatory error
            image_file, label_file = (self._find(f) for f in SPLIT_FILES[split])
        images, labels = read_idx(image_file, ndim=3), read_idx(label_file, ndim=1)
        if len(images) != len(labels) or images.shape[1:] != self.input_shape[1:]:
            raise DataError(
                f"{image_file} holds {tuple(images.shape)} images but {label_file} holds {len(labels)} labels; "
                f"expected N x {self.input_shape[1]} x {self.input_shape[2]} with N labels"
            )
        if len(labels) and int(labels.max()) >= self.num_classes:
            raise DataError(f"{label_file} has label {int(labels.max())}; labels must be < {self.num_classes}")
        x = images.unsqueeze(1).float().div_(255)
        if self.hparams.normalize:
            x.sub_(self.hparams.mean).div_(self.hparams.std)
        return x, labels.long()

    def input_scaling(self):
        return (self.hparams.mean, self.hparams.std) if self.hparams.normalize else (0.0, 1.0)

    def state_dict(self):
        return {**super().state_dict(), "preparation": self.preparation} if self.data_train is not None else {}

    def make_splits(self):
        x, y = self._load("train")
        n_val = round(len(y) * self.hparams.val_fraction)
        if not 0 < n_val < len(y):
            raise DataError(f"data.val_fraction={self.hparams.val_fraction} leaves no train or no validation data from {len(y)} images")
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.hparams.split_seed))
        self.background = float(x.min())  # what shifted-in pixels take: black, normalised or not
        return {"train": (x[perm[n_val:]], y[perm[n_val:]]), "val": (x[perm[:n_val]], y[perm[:n_val]]),
                "test": self._load("test")}

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # Training batches only, on the device they will be used on, a whole batch per call.
        if self.hparams.random_shift and self.trainer is not None and self.trainer.training:
            x, y = batch
            batch = random_shift(x, self.hparams.random_shift, self.background), y
        return batch
