"""src.predict on inputs a user brings: image files prepared as the training images were, CSV rows
in the data's units, and one clear message for each kind of bad input."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from src.data.idx import read_idx
from src.data.user_inputs import load_image
from src.models.standalone import data_state, standalone
from src.predict import predict
from src.train import train
from src.utils.checkpoint import load_model, read_checkpoint
from src.utils.errors import CheckpointError, ConfigError, InputError
from src.utils.preflight import check_job
from src.utils.resolvers import PROJECT_ROOT
from tests.conftest import make_cfg

MNIST = PROJECT_ROOT / "data"  # the real MNIST, shipped with the project
EARLIER = Path(__file__).parent / "data" / "earlier_checkpoints"


def mnist_test_digits(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    raw = MNIST / "MNIST" / "raw"
    x = read_idx(raw / "t10k-images-idx3-ubyte.gz", ndim=3)[:n]
    return x, read_idx(raw / "t10k-labels-idx1-ubyte.gz", ndim=1)[:n]


def as_user_photo(digit: torch.Tensor, path: Path) -> Path:
    """A 28x28 MNIST digit as a user might bring it: dark ink on grey paper, 4x larger, off-centre, RGB."""
    image = Image.fromarray(digit.numpy()).resize((112, 112), Image.BILINEAR)
    canvas = Image.new("L", (160, 140), 0)
    canvas.paste(image, (40, 6))
    paper = Image.eval(canvas, lambda v: 230 - v * 200 // 255)
    paper.convert("RGB").save(path)
    return path


def predict_cfg(tmp_path: Path, ckpt: Path, inputs: Path, name: str = "predict"):
    return make_cfg(tmp_path / name, MNIST, [f"ckpt_path={ckpt}", f"inputs={inputs}", "device=cpu"], "predict")


@pytest.mark.parametrize("photo", [False, True])
def test_an_image_is_prepared_as_mnist_prepared_its_digits(tmp_path, photo):
    """MNIST's own preparation (box scaled to 20 px, centred by its centre of mass) gives back a
    test digit from the digit itself, and nearly so from a larger, inverted, off-centre RGB photo of it."""
    digits, _ = mnist_test_digits(50)
    errors = []
    for i, digit in enumerate(digits):
        path = as_user_photo(digit, tmp_path / f"{i}.png") if photo else tmp_path / f"{i}.png"
        if not photo:
            Image.fromarray(digit.numpy()).save(path)
        seen = load_image(path, "digit")
        assert seen.shape == (1, 28, 28) and 0 <= seen.min() and seen.max() <= 1
        errors.append(float((seen[0] - digit.float() / 255).abs().mean()))
    # (Mean pixel of a digit: 0.13. A photo goes through two resamplings: it comes back blurred a little.)
    assert max(errors) < (0.1 if photo else 0.06) and sum(errors) / len(errors) < (0.04 if photo else 0.005)


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory) -> Path:
    """An MLP trained briefly on the real MNIST (about 93% test accuracy)."""
    out = tmp_path_factory.mktemp("digits") / "train"
    cfg = make_cfg(out, MNIST, ["model=mlp", "trainer.limit_train_batches=200", "trainer.limit_val_batches=2",
                                "logger=none", "test=false", "data.batch_size=64"])
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_photos_of_digits_get_their_labels_and_bad_files_are_listed(tmp_path, digit_model, capsys):
    ckpt = read_checkpoint(digit_model)
    model = load_model(ckpt).eval()
    digits, labels = mnist_test_digits(100)
    x = digits.unsqueeze(1).float() / 255
    with torch.no_grad():
        probs = model.probabilities((x - 0.1307) / 0.3081)  # the data config's normalisation, by hand
        # The network from raw pixels, normalisation included, gives the same probabilities.
        torch.testing.assert_close(standalone(model, ckpt)(x), probs)
    sure = [i for i in range(100) if probs[i].max() > 0.95 and probs[i].argmax() == labels[i]][:12]
    assert len(sure) == 12
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in sure:
        as_user_photo(digits[i], folder / f"digit{i}.png")
    (folder / "notes.txt").write_text("not an image")
    Image.new("RGB", (40, 40), "white").save(folder / "blank.jpg")

    rows = predict(predict_cfg(tmp_path, digit_model, folder))
    classes = data_state(ckpt)["classes"]
    assert {Path(r["input"]).name: r["label"] for r in rows} == {f"digit{i}.png": classes[labels[i]] for i in sure}
    out = tmp_path / "predict"
    with (out / "predictions.csv").open() as f:
        written = list(csv.DictReader(f))
    assert written == rows and list(written[0]) == ["input", "label", "probability", "top 3"]
    assert all(r["top 3"].startswith(f"{r['label']} ") and r["top 3"].count(";") == 2 for r in written)
    assert (out / "predictions.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "2 file(s) left out" in printed
    assert f"{folder / 'notes.txt'}: not an image file" in printed and f"{folder / 'blank.jpg'}: the image is blank" in printed


@pytest.fixture(scope="module")
def salary_model(tmp_path_factory) -> Path:
    """Linear regression on the Salary data, standardised: its statistics are in the checkpoint."""
    out = tmp_path_factory.mktemp("salary") / "train"
    train(make_cfg(out, MNIST, ["data=salary", "model=linreg", "optim=sgd", "optim.lr=0.1", "data.standardize=true",
                                "trainer.max_epochs=20", "logger=none"]))
    return out / "checkpoints" / "last.ckpt"


def test_csv_rows_are_predicted_in_the_data_units(tmp_path, salary_model):
    years = tmp_path / "years.csv"
    years.write_text("name,YearsExperience\nana,1.5\nbo,5\ncy,10\n")  # other columns are left alone
    rows = predict(predict_cfg(tmp_path, salary_model, years))

    # The fitted line in the data's units, computed from the checkpoint's w, b and the training split.
    from src.data.salary import SalaryDataModule

    dm = SalaryDataModule(str(MNIST / "Salary_Data.csv"), standardize=True)
    dm.setup("fit")
    ckpt = read_checkpoint(salary_model)
    w, b = dm.original_units(ckpt["state_dict"]["w"], ckpt["state_dict"]["b"])
    assert [r["input"] for r in rows] == [f"{years}:{line}" for line in (2, 3, 4)]
    for r, x in zip(rows, (1.5, 5.0, 10.0)):
        assert float(r["predicted Salary"]) == pytest.approx(float(x * w[0, 0] + b[0]), rel=1e-5)
    assert 60_000 < float(rows[1]["predicted Salary"]) < 90_000  # 5 years: a salary, not a standardised value


@pytest.mark.parametrize("content,message", [
    ("Years\n1\n", "no column 'YearsExperience' in the header (it has: Years); the columns needed: YearsExperience"),
    ("YearsExperience\n1\nlots\n", "line 3, column 'YearsExperience': 'lots' is not a number"),
    ("YearsExperience\n", "has a header but no rows"),
])
def test_a_bad_csv_names_its_file_line_and_column(tmp_path, salary_model, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        predict(predict_cfg(tmp_path, salary_model, path))
    assert str(path) in str(err.value) and message in str(err.value)


def test_images_for_a_model_of_csv_rows_and_an_empty_folder(tmp_path, salary_model):
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    with pytest.raises(InputError, match=r"digit.png: an image; this checkpoint's model takes rows with the columns "
                                         r"YearsExperience \(a CSV file\), not images"):
        predict(predict_cfg(tmp_path, salary_model, image))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: the folder holds no files"):
        predict(predict_cfg(tmp_path, salary_model, tmp_path / "empty"))


def test_a_vae_is_sent_to_the_sampler_and_an_old_checkpoint_explains_itself(tmp_path):
    vae = EARLIER / "vae.ckpt"
    with pytest.raises(CheckpointError, match=f"holds a VAE.*python -m src.sample ckpt_path={vae}"):
        predict(predict_cfg(tmp_path, vae, tmp_path))
    with pytest.raises(CheckpointError, match="written before checkpoints stored them"):
        predict(predict_cfg(tmp_path, EARLIER / "lenet.ckpt", tmp_path))


@pytest.mark.slow
def test_the_command_line(tmp_path, salary_model):
    years = tmp_path / "years.csv"
    years.write_text("YearsExperience\n3\n")
    run = subprocess.run([sys.executable, "-m", "src.predict", f"ckpt_path={salary_model}", f"inputs={years}",
                          f"paths.log_dir={tmp_path / 'logs'}"], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert run.returncode == 0, run.stderr
    assert f"{years}:2  YearsExperience: 3  predicted Salary: " in run.stdout
    assert len(list((tmp_path / "logs" / "predict" / "runs").glob("*/predictions.csv"))) == 1


def test_inputs_are_required_and_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="inputs is required: add inputs=<an image file, a folder"):
        check_job("predict", ["ckpt_path=x.ckpt", f"paths.log_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="inputs='nowhere.png' is not allowed: must be an image file, a folder"):
        check_job("predict", ["ckpt_path=x.ckpt", "inputs=nowhere.png", f"paths.log_dir={tmp_path}"])


def test_a_classifier_of_rows_names_its_classes(tmp_path):
    out = tmp_path / "train"
    train(make_cfg(out, MNIST, ["data=blobs", "model=logreg", "optim=sgd_scratch", "optim.lr=0.1",
                                "data.standardize=true", "trainer.max_epochs=5", "logger=none"]))
    points = tmp_path / "points.csv"
    points.write_text("x2,x1\n4,3\n-3,-4\n")  # columns in any order
    rows = predict(predict_cfg(tmp_path, out / "checkpoints" / "last.ckpt", points))
    assert [r["label"] for r in rows] == ["(2, 2) blob", "(-2, -2) blob"]
    assert all(float(r["probability"]) > 0.9 and r["top 2"].count(";") == 1 for r in rows)


def test_a_csv_for_an_image_model_says_the_model_takes_images(tmp_path, data_dir):
    out = tmp_path / "train"
    train(make_cfg(out, data_dir, ["model=softmax", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                                   "logger=none", "test=false"]))
    rows = tmp_path / "r.csv"
    rows.write_text("x1,x2\n0.5,0.2\n")
    with pytest.raises(InputError, match=r"r.csv: a CSV file; this checkpoint's model takes images \(PNG, JPEG, ...\), "
                                         r"not rows"):
        predict(predict_cfg(tmp_path, out / "checkpoints" / "last.ckpt", rows))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU: device=cuda runs")
def test_device_cuda_without_a_gpu_is_refused_in_one_line(tmp_path, salary_model):
    years = tmp_path / "years.csv"
    years.write_text("YearsExperience\n3\n")
    cfg = make_cfg(tmp_path / "predict", MNIST, [f"ckpt_path={salary_model}", f"inputs={years}", "device=cuda"],
                   "predict")
    with pytest.raises(ConfigError, match=r"^device=cuda: PyTorch sees no CUDA GPU on this machine; use device=auto "
                                          r"\(a GPU where there is one\) or device=cpu$"):
        predict(cfg)
