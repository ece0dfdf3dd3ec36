"""MLPClassifier and MLPRegressor judged by scikit-learn's own estimator
checks, and by what a user of them expects."""

import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks  # noqa: E402

import backprop  # noqa: E402
from backprop import MLPClassifier, MLPRegressor  # noqa: E402

# Checks skipped, with the reason. None: both estimators pass every check
# scikit-learn runs on them. (A check that skips itself — e.g. the pandas
# part of check_*_data_not_an_array when pandas is absent — shows as skipped
# in pytest's report with scikit-learn's own reason.)
SKIPPED = {}


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_check(estimator, check):
    name = getattr(check, "func", check).__name__
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    check(estimator)


@pytest.mark.parametrize("estimator", [MLPClassifier(), MLPRegressor()], ids=lambda e: type(e).__name__)
def test_check_estimator_passes_whole(estimator):
    check_estimator(estimator)


def test_classifier_learns_digits_and_round_trips():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    labels = np.array(list("abcdefghij"))[ytr]  # any labels, mapped through classes_
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=60, random_state=0).fit(Xtr, labels)
    assert list(clf.classes_) == list("abcdefghij")
    assert clf.score(Xte, np.array(list("abcdefghij"))[yte]) > 0.93
    proba = clf.predict_proba(Xte)
    assert proba.shape == (len(Xte), 10) and np.allclose(proba.sum(1), 1)
    assert clf.network_.dtype == np.float64 and clf.n_iter_ == len(clf.loss_curve_)
    assert [c.shape for c in clf.coefs_] == [(64, 64), (64, 10)]
    back = pickle.loads(pickle.dumps(clf))
    assert (back.predict_proba(Xte) == proba).all()
    # float32 data trains a float32 network
    clf32 = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0)
    assert clf32.fit(Xtr.astype(np.float32), ytr).network_.dtype == np.float32


def test_same_random_state_same_model():
    X, y = load_digits(return_X_y=True)
    a = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=3).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=3).fit(X, y)
    c = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=4).fit(X, y)
    assert (a.predict_proba(X) == b.predict_proba(X)).all()
    assert not (a.predict_proba(X) == c.predict_proba(X)).all()


def test_early_stopping_holds_out_and_stops():
    X, y = load_digits(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(64,), solver="sgd", learning_rate_init=0.1,
                        max_iter=500, early_stopping=True, n_iter_no_change=3,
                        random_state=0).fit(X / 16, y)
    assert clf.n_iter_ < 500
    best = int(np.argmin(clf.validation_loss_curve_))
    assert clf.best_loss_ == pytest.approx(clf.validation_loss_curve_[best])


def test_regressor_fits_several_outputs():
    X, y = make_regression(n_samples=300, n_features=6, n_targets=2, noise=0.1, random_state=0)
    y = y / y.std(0)
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=300,
                       random_state=0).fit(X, y)
    assert reg.predict(X).shape == (300, 2) and reg.score(X, y) > 0.95
    one = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y[:, 0])
    assert one.predict(X).shape == (300,)


def test_bad_input_is_refused_clearly():
    X, y = load_digits(return_X_y=True)
    Xn = X.copy()
    Xn[5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier(max_iter=1).fit(Xn, y)
    with pytest.raises(ValueError, match="lbfgs"):
        MLPClassifier(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="1 class"):
        MLPClassifier().fit(X, np.zeros(len(X)))
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :10])
    if backprop.cuda_device_count() == 0:
        with pytest.raises(backprop.DeviceError, match="CUDA"):
            MLPClassifier(device="cuda", max_iter=1).fit(X, y)
