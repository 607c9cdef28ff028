"""scripts/reference.py: scikit-learn's baselines on the project's own splits."""

import subprocess
import sys

from src.utils.resolvers import PROJECT_ROOT


def run_reference(*overrides) -> str:
    proc = subprocess.run([sys.executable, "scripts/reference.py", *overrides], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_reference_classifiers_and_least_squares():
    out = run_reference("data=blobs")
    assert "BlobsDataModule: 100 training and 100 test rows" in out
    assert out.count("test accuracy") == 4
    out = run_reference("data=linear")
    mse = float(out.split("test MSE ")[1].split(",")[0])
    assert 5e-5 < mse < 2e-4  # the noise variance, 1e-4


def test_an_image_set_or_a_misspelt_one_is_one_line():
    for data, message in (("data=mnist", "data=mnist is images; the references are for the small data sets of rows"),
                          ("data=salry", "Could not find 'data/salry'")):
        proc = subprocess.run([sys.executable, "scripts/reference.py", data], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
