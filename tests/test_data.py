"""IDX reading, the MNIST DataModule and its in-memory loaders."""

import gzip

import pytest
import torch

from src.data.idx import read_idx, write_idx
from src.data.in_memory import Batches, EpochShuffleSampler, TensorSplit
from src.data.mnist_datamodule import MNISTDataModule
from src.utils.errors import DataError
from tests.conftest import N_TEST, N_TRAIN


def test_idx_roundtrip_plain_and_gz(tmp_path):
    data = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8)
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        write_idx(tmp_path / name, data)
        assert torch.equal(read_idx(tmp_path / name, ndim=3), data)


def test_truncated_idx_gives_clear_error(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, torch.zeros(10, 28, 28, dtype=torch.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: header promises shape \(10, 28, 28\).*truncated"):
        read_idx(path, ndim=3)


def test_truncated_gzip_gives_clear_error(tmp_path):
    path = tmp_path / "labels.gz"
    write_idx(path, torch.zeros(1000, dtype=torch.uint8))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="cannot read .*labels.gz.*truncated or corrupt"):
        read_idx(path, ndim=1)


def test_not_an_idx_file(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"<html>404 not found</html>")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path, ndim=1)


def test_wrong_dimensions(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, torch.zeros(5, dtype=torch.uint8))
    with pytest.raises(DataError, match="expected 3-D"):
        read_idx(path, ndim=3)


def test_datamodule_splits_normalises_and_is_seeded(data_dir):
    dm = MNISTDataModule(data_dir=str(data_dir), val_fraction=0.25, batch_size=16, download=False)
    dm.setup()
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (N_TRAIN * 3 // 4, N_TRAIN // 4, N_TEST)
    assert dm.data_train.x.shape[1:] == (1, 28, 28) and dm.data_train.x.dtype == torch.float32
    raw_max = (255 / 255 - 0.1307) / 0.3081
    assert torch.isclose(dm.data_train.x.max(), torch.tensor(raw_max))
    again = MNISTDataModule(data_dir=str(data_dir), val_fraction=0.25, download=False, seed=123)
    again.setup()
    assert torch.equal(dm.data_val.y, again.data_val.y)  # the split depends on split_seed only
    other = MNISTDataModule(data_dir=str(data_dir), val_fraction=0.25, download=False, split_seed=7)
    other.setup()
    assert not torch.equal(dm.data_val.x, other.data_val.x)


def test_unnormalised_pixels_are_in_unit_range(data_dir):
    dm = MNISTDataModule(name="fashion_mnist", data_dir=str(data_dir), normalize=False, download=False)
    dm.setup()
    assert dm.data_test.x.min() >= 0 and dm.data_test.x.max() == 1
    assert dm.classes[0] == "T-shirt/top"


def test_train_loader_yields_whole_batches_in_a_seeded_order(data_dir):
    dm = MNISTDataModule(data_dir=str(data_dir), batch_size=16, download=False, seed=3)
    dm.setup()
    first = [y for _, y in dm.train_dataloader()]
    assert sum(len(y) for y in first) == len(dm.data_train)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 28, 28) and y.dtype == torch.long
    again = [y for _, y in dm.train_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    in_file_order = dm.data_train.y[: len(first[0])]
    assert not torch.equal(first[0], in_file_order)  # shuffled
    other_seed = MNISTDataModule(data_dir=str(data_dir), batch_size=16, download=False, seed=4)
    other_seed.setup()
    assert not torch.equal(next(iter(other_seed.train_dataloader()))[1], first[0])


def test_epoch_shuffle_depends_only_on_seed_and_epoch():
    s = EpochShuffleSampler(50, seed=1)
    s.set_epoch(2)
    order = s.order().tolist()
    assert sorted(order) == list(range(50))
    t = EpochShuffleSampler(50, seed=1)
    t.set_epoch(2)
    assert t.order().tolist() == order
    t.set_epoch(3)
    assert t.order().tolist() != order
    u = EpochShuffleSampler(50, seed=2)  # not the order of seed 1 one epoch later
    u.set_epoch(1)
    t.set_epoch(2)
    assert u.order().tolist() != t.order().tolist()


@pytest.mark.parametrize("n", [40, 41])
def test_distributed_batches_give_each_rank_its_own_shard(n):
    split = TensorSplit(torch.arange(n).float().unsqueeze(1), torch.arange(n))
    sampler = EpochShuffleSampler(n, seed=0)
    padded = [torch.cat([y for _, y in Batches(split, 8, sampler, rank, 2)]) for rank in range(2)]
    assert len(padded[0]) == len(padded[1]) == 20 + n % 2  # equal counts: DDP's collectives need them
    assert set(torch.cat(padded).tolist()) == set(range(n))
    exact = [torch.cat([y for _, y in Batches(split, 8, None, rank, 2, pad=False)]) for rank in range(2)]
    assert sorted(torch.cat(exact).tolist()) == list(range(n))  # every sample once
    assert [len(b) for b in exact] == [len(Batches(split, 1, None, r, 2, pad=False)) for r in range(2)]
    counted = [[n for *_, n in Batches(split, 8, None, rank, 2, count_real=True)] for rank in range(2)]
    assert sum(map(sum, counted)) == n  # padded to equal batch counts, the padding counted out
    assert len(counted[0]) == len(counted[1])


def test_missing_dataset_offline_names_dataset_folder_files_and_fix(tmp_path):
    dm = MNISTDataModule(name="fashion_mnist", data_dir=str(tmp_path), download=False)
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "Fashion-MNIST not found" in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert f in message
    assert "DATA_DIR=" in message and "paths.data_dir=" in message


def test_failed_download_is_reported(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    dm = MNISTDataModule(name="mnist", data_dir=str(tmp_path), download=True)
    monkeypatch.setattr(dm, "tv_class", offline)
    with pytest.raises(DataError, match="MNIST not found.*downloading it failed.*Error downloading"):
        dm.prepare_data()


def test_label_image_count_mismatch(tmp_path, data_dir):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (data_dir / "MNIST" / "raw").iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", torch.zeros(3, dtype=torch.uint8))
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DataError, match="holds .* images but .* holds 3 labels"):
        dm.setup()


def test_shipped_mnist_is_complete():
    """The project ships MNIST so that `python -m src.train` runs offline."""
    from src.utils.resolvers import PROJECT_ROOT

    dm = MNISTDataModule(data_dir=str(PROJECT_ROOT / "data"), download=False)
    assert dm._missing() == []
    labels = read_idx(dm._find("t10k-labels-idx1-ubyte"), ndim=1)
    assert len(labels) == 10_000 and labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_a_checkpoint_from_before_data_device_still_loads_its_datamodule(data_dir):
    from src.utils.checkpoint import load_datamodule

    old = {"datamodule_class": "src.data.mnist_datamodule.MNISTDataModule",
           "datamodule_hyper_parameters": {"name": "mnist", "batch_size": 32, "download": False,
                                           "num_workers": 0, "pin_memory": False}}
    dm = load_datamodule(old, str(data_dir))
    assert dm.batch_size == 32 and dm.device == "auto"


def test_a_fraction_of_batches_that_keeps_none_is_one_clear_error(cfg_factory):
    from src.train import train

    cfg = cfg_factory("model=mlp", "trainer.limit_val_batches=0.1")  # the tiny set's 16 validation images: 1 batch
    with pytest.raises(DataError, match=r"trainer.limit_val_batches=0.1 keeps no batch: the val split has 1 batch "
                                        r"of 16 \(data.eval_batch_size\)\. Use a fraction of at least 1, a number"):
        train(cfg)
