"""The 30-row YearsExperience -> Salary set, shipped in data/Salary_Data.csv."""

import csv
from pathlib import Path

import torch

from src.data.tensor_datamodule import TensorDataModule
from src.utils.errors import DataError


def read_csv_columns(path: Path, columns: list[str], missing_hint: str) -> torch.Tensor:
    """The numeric `columns` of a CSV file as a float tensor (rows, columns); other columns are ignored.
    A clear error names the file, line and column of a bad cell; `missing_hint` says what to do
    when the file is missing."""
    if not path.is_file():
        raise DataError(f"{path} not found: {missing_hint}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        absent = [c for c in columns if c not in header]
        if absent:
            raise DataError(f"{path}: no column {', '.join(map(repr, absent))} in the header (it has: "
                            f"{', '.join(header) or 'nothing'}); the columns needed: {', '.join(columns)}")
        rows = []
        for row in reader:  # reader.line_num: the file's line, header = line 1
            values = []
            for column in columns:
                text = row[column]
                try:
                    values.append(float(text))
                except (TypeError, ValueError):
                    raise DataError(f"{path}, line {reader.line_num}, column {column!r}: {text!r} is not a number") from None
            rows.append(values)
    if not rows:
        raise DataError(f"{path} has a header but no rows")
    return torch.tensor(rows)


class SalaryDataModule(TensorDataModule):
    input_shape = (1,)
    num_classes = None
    feature_names, target_name = ["YearsExperience"], "Salary"

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
        columns = [*self.feature_names, self.target_name]
        xy = read_csv_columns(self.csv_path, columns, f"point data.csv_path at a CSV with columns {','.join(columns)}")
        x, y = xy[:, :1], xy[:, 1:]
        n_train = self.hparams.n_train
        if not 0 < n_train < len(x):
            raise DataError(f"data.n_train={n_train} must leave rows for both splits of the {len(x)} in {self.csv_path}")
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.hparams.split_seed))
        train, test = perm[:n_train], perm[n_train:]
        return {"train": (x[train], y[train]), "test": (x[test], y[test])}
