"""scikit-learn references on the same split the project trains on, to say what "good" is.

    python scripts/reference.py data=clusters        # LogisticRegression (the seed's), k-NN, RBF SVM
    python scripts/reference.py data=xor_clusters
    python scripts/reference.py data=salary          # ordinary least squares

Classifiers print test accuracy; regressors print test MSE in the data's units. The
inputs are standardised inside each pipeline (the seed's LogisticRegression also runs on
the raw coordinates, as it did). Needs scikit-learn (in the dev extra).
"""

import argparse

from hydra.utils import instantiate
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import mean_squared_error
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from src.utils.errors import UserError
from src.utils.preflight import check_job

CLASSIFIERS = {
    "LogisticRegression(C=1e5), raw inputs (the seed's)": lambda: LogisticRegression(C=1e5, max_iter=100_000),
    "LogisticRegression, standardised": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=10_000)),
    "k-NN (k=15), standardised": lambda: make_pipeline(StandardScaler(), KNeighborsClassifier(15)),
    "RBF SVM (C=10), standardised": lambda: make_pipeline(StandardScaler(), SVC(C=10)),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="+", help="Hydra overrides choosing the data, e.g. data=clusters")
    args = parser.parse_args()
    try:  # the project's own check: a misspelt option or a bad value is one line
        cfg = check_job("train", ["data.standardize=false", *args.overrides])
    except UserError as e:
        parser.error(str(e))
    if cfg.data._target_.endswith(".MNISTDataModule"):
        parser.error(f"data={cfg.data.name} is images; the references are for the small data sets of rows: "
                     f"data=salary, linear, blobs, clusters or xor_clusters")
    dm = instantiate(cfg.data)
    dm.setup("fit")
    x, y = dm.data_train.x.numpy(), dm.data_train.y.numpy()
    xt, yt = dm.data_test.x.numpy(), dm.data_test.y.numpy()
    print(f"{type(dm).__name__}: {len(x)} training and {len(xt)} test rows")
    if dm.num_classes is None:
        model = LinearRegression().fit(x, y)
        print(f"  least squares: test MSE {mean_squared_error(yt, model.predict(xt)):.6g}, "
              f"w {model.coef_.ravel().round(4).tolist()}, b {model.intercept_.round(4).tolist()}")
        return
    for name, make in CLASSIFIERS.items():
        print(f"  {name:52} test accuracy {make().fit(x, y).score(xt, yt):.4f}")


if __name__ == "__main__":
    main()
