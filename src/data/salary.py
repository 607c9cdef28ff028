"""The 30-row YearsExperience -> Salary set, shipped in data/Salary_Data.csv."""

import csv
from pathlib import Path

import torch

from src.data.tensor_datamodule import TensorDataModule
from src.utils.errors import DataError


def read_csv_columns(path: Path, x_column: str, y_column: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Two numeric columns as float tensors (n, 1); a clear error names the file, row and column."""
    if not path.is_file():
        raise DataError(f"{path} not found: point data.csv_path at a CSV with columns {x_column},{y_column}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        for column in (x_column, y_column):
            if column not in header:
                raise DataError(f"{path}: no column {column!r} in the header (it has: {', '.join(header) or 'nothing'})")
        xs, ys = [], []
        for row in reader:  # reader.line_num: the file's line, header = line 1
            values = []
            for column in (x_column, y_column):
                text = row[column]
                try:
                    values.append(float(text))
                except (TypeError, ValueError):
                    raise DataError(f"{path}, line {reader.line_num}, column {column!r}: {text!r} is not a number") from None
            xs.append(values[0])
            ys.append(values[1])
    if not xs:
        raise DataError(f"{path} has a header but no rows")
    return torch.tensor(xs).unsqueeze(1), torch.tensor(ys).unsqueeze(1)


class SalaryDataModule(TensorDataModule):
    input_shape = (1,)
    num_classes = None

    def __init__(
        self,
        csv_path: str,
        n_train: int = 20,
        split_seed: int = 0,
        **loader,  # TensorDataModule's batch_size, eval_batch_size, standardize, seed, repeat
    ):
        super().__init__(**loader)
        self.save_hyperparameters(ignore=["csv_path"], logger=False)
        self.csv_path = Path(csv_path)

    def make_splits(self):
        x, y = read_csv_columns(self.csv_path, "YearsExperience", "Salary")
        n_train = self.hparams.n_train
        if not 0 < n_train < len(x):
            raise DataError(f"data.n_train={n_train} must leave rows for both splits of the {len(x)} in {self.csv_path}")
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.hparams.split_seed))
        train, test = perm[:n_train], perm[n_train:]
        return {"train": (x[train], y[train]), "test": (x[test], y[test])}
