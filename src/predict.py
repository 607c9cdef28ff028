"""Run a trained model on your own inputs.

    python -m src.predict ckpt_path=<run dir>/checkpoints/last.ckpt inputs=my_digit.png
    python -m src.predict ckpt_path=last inputs=photos/      # every image of a folder
    python -m src.predict ckpt_path=<a linreg run>/checkpoints/last.ckpt inputs=years.csv

Image models take PNG/JPEG files of any size, colour or grey, dark on light or the reverse: each is
prepared as the training images were (see src/data/user_inputs.py). Linear and logistic regression
and the other models of feature rows take CSV files with the data's column names. Writes
predictions.csv (and predictions.png of the images as the model saw them) to logs/predict/runs/<time>/.
ckpt_path=last: the last.ckpt under logs/train modified most recently, of any classifier or linear
regression (a VAE's is passed over), whichever kind of input it takes.
"""

from src.utils.program import preflight, program

preflight("predict", __name__)  # a bad command line stops here, before the imports below take seconds

import csv  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from PIL import Image  # noqa: E402

from src.callbacks.figure_io import plt  # noqa: E402
from src.data.user_inputs import input_files, load_image, read_rows  # noqa: E402
from src.models.classifier import Classifier  # noqa: E402
from src.models.linreg import LinearRegression  # noqa: E402
from src.models.standalone import data_state, standalone  # noqa: E402
from src.models.vae import VAE  # noqa: E402
from src.utils.checkpoint import find_last, load_model, read_checkpoint  # noqa: E402
from src.utils.errors import CheckpointError, ConfigError, InputError, UserError  # noqa: E402

TOP = 3  # classes listed per input
FIGURE_MAX = 100  # images drawn in predictions.png


def read_inputs(files: list[Path], state: dict) -> tuple[list[str], torch.Tensor, dict[str, str]]:
    """(a name per input, the inputs, {file: why it was left out})."""
    names, inputs, bad = [], [], {}
    for path in files:
        try:
            if "preparation" in state:  # an image data set
                inputs.append(load_image(path, state["preparation"]))
                names.append(str(path))
            else:
                rows = read_rows(path, state["feature_names"])
                inputs.extend(rows)
                names.extend(f"{path}:{line}" for line in range(2, len(rows) + 2))  # the file's line; header = 1
        except UserError as e:
            bad[str(path)] = other_kind(path, state) or str(e)
    if not inputs:
        raise InputError("no input could be read:\n  " + "\n  ".join(bad.values()))
    return names, torch.stack(inputs), bad


def other_kind(path: Path, state: dict) -> str | None:
    """Why `path` was refused when it is the other kind of input (an image for a model of rows, a CSV
    for an image model): ckpt_path=last may have picked a model of the other kind."""
    if "preparation" in state:
        if path.suffix.lower() == ".csv":
            return f"{path}: a CSV file; this checkpoint's model takes images (PNG, JPEG, ...), not rows"
    elif path.suffix.lower() in Image.registered_extensions():
        return (f"{path}: an image; this checkpoint's model takes rows with the columns "
                f"{', '.join(state['feature_names'])} (a CSV file), not images")
    return None


@torch.no_grad()
def run(net: torch.nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    net = net.to(device)
    return torch.cat([net(chunk.to(device)).cpu() for chunk in x.split(1024)])


def classify(names: list[str], x: torch.Tensor, probs: torch.Tensor, state: dict, out: Path) -> list[dict]:
    classes = state["classes"]
    top_p, top_i = probs.topk(min(TOP, probs.shape[1]), dim=1)
    rows = []
    for name, p, i in zip(names, top_p.tolist(), top_i.tolist()):
        top = "; ".join(f"{classes[c]} {q:.3f}" for c, q in zip(i, p))
        rows.append({"input": name, "label": classes[i[0]], "probability": f"{p[0]:.4f}", f"top {len(i)}": top})
    if "preparation" in state:
        draw(x, [f"{Path(r['input']).name}\n{r['label']} ({float(r['probability']):.2f})" for r in rows],
             out / "predictions.png")
    return rows


def regress(names: list[str], x: torch.Tensor, y: torch.Tensor, state: dict) -> list[dict]:
    features = state["feature_names"]
    return [{"input": name, **{f: f"{v:g}" for f, v in zip(features, row)}, f"predicted {state['target_name']}": f"{float(t):.6g}"}
            for name, row, t in zip(names, x.tolist(), y)]


def draw(x: torch.Tensor, titles: list[str], path: Path) -> None:
    """The prepared images (what the model saw), each titled with its file and prediction."""
    n = min(len(x), FIGURE_MAX)
    cols = min(n, 8)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, x[:n], titles):
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=7)
    if len(x) > n:
        fig.suptitle(f"the first {n} of {len(x)} inputs")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def predict(cfg: DictConfig) -> list[dict]:
    # Before anything is loaded (else CUDA's own traceback, once the model is on its way to the GPU).
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda: PyTorch sees no CUDA GPU on this machine; use device=auto "
                          "(a GPU where there is one) or device=cpu")
    if cfg.ckpt_path == "last":  # the newest last.ckpt of a model predict can run, trained by src.train
        cfg.ckpt_path = str(find_last(cfg.paths.log_dir, "train", (Classifier, LinearRegression)))
        print(f"ckpt_path=last: predicting with {cfg.ckpt_path}")
    ckpt = read_checkpoint(cfg.ckpt_path)
    model = load_model(ckpt)
    if isinstance(model, VAE):
        raise CheckpointError(f"ckpt_path={cfg.ckpt_path} holds a VAE: it generates images, it does not predict "
                              f"from them. Draw samples with: python -m src.sample ckpt_path={cfg.ckpt_path}")
    net, state = standalone(model, ckpt), data_state(ckpt)
    names, x, bad = read_inputs(input_files(Path(cfg.inputs)), state)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          "cpu" if cfg.device == "auto" else cfg.device)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    y = run(net, x, device)
    rows = classify(names, x, y, state, out) if isinstance(model, Classifier) else regress(names, x, y, state)

    with (out / "predictions.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    width = max(len(r["input"]) for r in rows)
    for r in rows:
        print(f"{r['input']:<{width}}  " + "  ".join(f"{k}: {v}" for k, v in r.items() if k != "input"))
    if bad:
        print(f"\n{len(bad)} file(s) left out:\n  " + "\n  ".join(bad.values()))
    print(f"\npredictions of {len(rows)} input(s) written to {out / 'predictions.csv'}")
    return rows


@program("predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
