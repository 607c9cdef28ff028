"""The README's recipes for a new model and a new data set, run as written.

Their four files are taken from the README and written to a temporary folder: the code joins
the `src.nets` and `src.data` packages from there, the configs join Hydra's search path. No
file of the project changes.
"""

import re
import sys

import pytest

import src.data
import src.nets
from src.utils.resolvers import PROJECT_ROOT
from tests.conftest import make_cfg

RECIPES = {"src/nets/tanh_mlp.py", "conf/model/tanh_mlp.yaml", "src/data/rings.py", "conf/data/rings.yaml"}


def recipe_files() -> dict[str, str]:
    """{path: text} of the README's code blocks that start with a `# <path>` line."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:python|yaml)\n# (\S+)\n(.*?)```", readme, flags=re.S)
    return {path: text for path, text in blocks if path in RECIPES}


@pytest.fixture
def recipes(tmp_path, monkeypatch):
    files = recipe_files()
    assert set(files) == RECIPES
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.setattr(src.nets, "__path__", [*src.nets.__path__, str(tmp_path / "src" / "nets")])
    monkeypatch.setattr(src.data, "__path__", [*src.data.__path__, str(tmp_path / "src" / "data")])
    yield tmp_path
    for name in ("src.nets.tanh_mlp", "src.data.rings"):
        sys.modules.pop(name, None)


def test_a_new_model_and_data_set_are_two_files_each(recipes, tmp_path, data_dir):
    from src.eval import evaluate
    from src.export import export
    from src.predict import predict
    from src.train import train

    search_path = f"hydra.searchpath=[file://{recipes / 'conf'}]"
    cfg = make_cfg(tmp_path / "run", data_dir, [search_path, "model=tanh_mlp", "data=rings", "model.net.hidden=32",
                                                "optim.lr=0.01", "trainer.max_epochs=10"])
    metrics, trainer = train(cfg)
    assert metrics["test/acc"] > 0.95
    assert trainer.lightning_module.net.layers[1].out_features == 32
    assert (tmp_path / "run" / "decision_boundary.png").is_file()  # the data config's figures
    assert (tmp_path / "run" / "confusion_matrix.png").is_file()  # the model config's

    result = evaluate(make_cfg(tmp_path / "eval", data_dir, [f"ckpt_path={trainer.checkpoint_callback.best_model_path}"],
                               config_name="eval"))
    assert result["test/acc"] == pytest.approx(metrics["test/acc"])

    # A data set that names no classes (TensorDataModule.classes is None): predict and export name them 0, 1.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    points = tmp_path / "r.csv"
    points.write_text("x1,x2\n0.5,0.2\n2,0\n")  # on the inner ring (class 0), on the outer one (class 1)
    rows = predict(make_cfg(tmp_path / "predict", data_dir, [f"ckpt_path={last}", f"inputs={points}"],
                            config_name="predict"))
    assert [r["label"] for r in rows] == ["0", "1"]
    assert rows[0]["top 2"].startswith("0 ") and "; 1 " in rows[0]["top 2"]
    info = export(make_cfg(tmp_path / "export", data_dir, [f"ckpt_path={last}", "format=pt2"], config_name="export"))
    assert info["classes"] == ["0", "1"] and info["output"]["shape"] == ["N", 2]
    assert info["compared_on"] == "256 rows of the test split" and info["largest_difference"] <= 1e-4
