"""The small data sets: the seeds' generators, the Salary CSV and its errors, standardisation."""

import pytest
import torch

from src.data.in_memory import EpochShuffleSampler
from src.data.salary import SalaryDataModule
from src.data.synthetic import BlobsDataModule, ClustersDataModule, LinearDataModule
from src.utils.errors import ConfigError, DataError
from src.utils.resolvers import PROJECT_ROOT

SALARY_CSV = PROJECT_ROOT / "data" / "Salary_Data.csv"


def built(dm):
    dm.setup("fit")
    return dm


def test_generators_are_deterministic_for_a_seed():
    for make in (LinearDataModule, BlobsDataModule, lambda **k: ClustersDataModule(n_clusters=3, **k)):
        a, b, c = built(make(data_seed=5)), built(make(data_seed=5)), built(make(data_seed=6))
        assert torch.equal(a.data_train.x, b.data_train.x) and torch.equal(a.data_test.y, b.data_test.y)
        assert not torch.equal(a.data_train.x, c.data_train.x)


def test_linear_shapes_and_truth():
    dm = built(LinearDataModule(true_w=[2, -3.4], true_b=4.2, n=1000, n_eval=200, noise_std=0.01))
    assert dm.data_train.x.shape == (1000, 2) and dm.data_train.y.shape == (1000, 1)
    assert len(dm.data_val) == len(dm.data_test) == 200 and dm.num_classes is None and dm.input_shape == (2,)
    residual = dm.data_train.y - (dm.data_train.x @ torch.tensor([[2.0], [-3.4]]) + 4.2)
    assert abs(float(residual.std()) - 0.01) < 0.002


def test_blobs_match_the_seed():
    dm = built(BlobsDataModule())
    x, y = dm.data_train.x, dm.data_train.y
    assert x.shape == (100, 2) and torch.bincount(y).tolist() == [50, 50]
    assert torch.allclose(x[y == 0].mean(0), torch.tensor([2.0, 2.0]), atol=0.4)
    assert torch.allclose(x[y == 1].mean(0), torch.tensor([-2.0, -2.0]), atol=0.4)
    assert not torch.equal(dm.data_test.x, x)  # a fresh draw
    assert dm.data_val is dm.data_train  # the seed validates on the training set


def test_clusters_reproduce_the_seed_split():
    # data_seed 9603602 gives the seed's cluster sizes and shuffle: it printed 5174 / 1294
    # samples and the first training labels [3, 6, 7]; for the XOR-like set 8274 / 2069.
    dm = built(ClustersDataModule())
    assert (len(dm.data_train), len(dm.data_test)) == (5174, 1294)
    assert dm.data_train.y[:3].tolist() == [3, 6, 7]
    counts = torch.bincount(torch.cat([dm.data_train.y, dm.data_test.y]), minlength=10)
    assert dm.num_classes == 10 and ((counts >= 600) & (counts <= 700)).all()
    assert dm.data_train.x.shape[1] == 3
    xor = built(ClustersDataModule(n_clusters=16, merge=2))
    assert (len(xor.data_train), len(xor.data_test)) == (8274, 2069) and xor.num_classes == 8
    counts = torch.bincount(torch.cat([xor.data_train.y, xor.data_test.y]))
    assert len(counts) == 8 and ((counts >= 1200) & (counts <= 1400)).all()  # two clusters per label


def test_clusters_refuse_an_uneven_merge_and_inverted_sizes():
    with pytest.raises(ConfigError, match="n_clusters=15 is not a multiple of data.merge=2"):
        ClustersDataModule(n_clusters=15, merge=2)
    with pytest.raises(ConfigError, match="data.min_size=700 is above data.max_size=600"):
        ClustersDataModule(min_size=700, max_size=600)


def test_salary_split_and_standardisation():
    raw = built(SalaryDataModule(str(SALARY_CSV)))
    assert (len(raw.data_train), len(raw.data_test)) == (20, 10) and raw.data_val is raw.data_train
    std = built(SalaryDataModule(str(SALARY_CSV), standardize=True))
    x, y = std.data_train.x, std.data_train.y
    assert torch.allclose(x.mean(0), torch.zeros(1), atol=1e-5) and torch.allclose(x.std(0), torch.ones(1), atol=1e-5)
    assert torch.allclose(y.mean(0), torch.zeros(1), atol=1e-5) and torch.allclose(y.std(0), torch.ones(1), atol=1e-5)
    # Same rows in the same order, only rescaled.
    assert torch.allclose(x * std.x_std + std.x_mean, raw.data_train.x)
    # A line fitted on standardised data, mapped back, predicts the same in original units.
    w, b = torch.tensor([[0.9]]), torch.tensor([0.1])
    w0, b0 = std.original_units(w, b)
    assert torch.allclose((x @ w + b) * std.y_std + std.y_mean, raw.data_train.x @ w0 + b0, rtol=1e-5)


@pytest.mark.parametrize(
    "content,message",
    [
        ("Years,Salary\n1.1,39343\n", "no column 'YearsExperience' in the header (it has: Years, Salary)"),
        ("YearsExperience,Salary\n1.1,39343\n2.0,lots\n", "line 3, column 'Salary': 'lots' is not a number"),
        ("YearsExperience,Salary\n1.1,39343\n,43525\n", "line 3, column 'YearsExperience': '' is not a number"),
        ("YearsExperience,Salary\n1.1\n", "line 2, column 'Salary': None is not a number"),
        ("YearsExperience,Salary\n", "has a header but no rows"),
    ],
)
def test_bad_salary_csv_names_file_row_and_column(tmp_path, content, message):
    path = tmp_path / "salary.csv"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        built(SalaryDataModule(str(path)))
    assert str(path) in str(err.value) and message in str(err.value)


def test_repeat_sampler_gives_full_passes():
    sampler = EpochShuffleSampler(5, seed=0, repeat=3)
    order = sampler.order().tolist()
    assert len(sampler) == len(order) == 15
    for i in range(0, 15, 5):
        assert sorted(order[i : i + 5]) == list(range(5))


def test_checkpointed_state_maps_raw_inputs_to_what_the_model_saw():
    raw, std = built(SalaryDataModule(str(SALARY_CSV))), built(SalaryDataModule(str(SALARY_CSV), standardize=True))
    state = std.state_dict()  # Lightning stores it in every checkpoint: src.predict and src.export need no data
    assert torch.allclose((raw.data_train.x - state["input_mean"]) / state["input_std"], std.data_train.x)
    assert torch.allclose(std.data_train.y * state["target_std"] + state["target_mean"], raw.data_train.y)
    assert (state["feature_names"], state["target_name"], state["classes"]) == (["YearsExperience"], "Salary", None)


def test_salary_fit_is_drawn_with_the_data_names():
    from src.callbacks.small_data_figures import SmallDataFigures
    from src.models.linreg import LinearRegression

    figure = SmallDataFigures("unused").line_figure(built(SalaryDataModule(str(SALARY_CSV))), LinearRegression([1]))
    ax = figure.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("YearsExperience", "Salary")
    assert ax.get_legend().get_texts()[-1].get_text().startswith("Salary = ")
