"""scikit-learn estimators over the library: MLPClassifier and MLPRegressor,
shaped after sklearn.neural_network's (hidden_layer_sizes, activation,
solver, learning_rate_init, batch_size, max_iter, early_stopping,
validation_fraction, n_iter_no_change, tol, random_state), trained by the
library's trainer (backprop.fit) on the CPU or a CUDA device.

Differences from sklearn.neural_network, by design of the library:
 - solver is sgd, adam or adamw (no lbfgs); weight_decay is torch.optim's
   (added to the gradient of every weight and bias), not sklearn's alpha;
 - the learning-rate schedule is the trainer's: constant, cosine, step or
   plateau (schedule=...), not invscaling/adaptive;
 - early stopping and n_iter_no_change watch the validation loss (the
   training loss without early_stopping), not the validation score;
 - the network computes in float32 when X is float32 and in float64
   otherwise, unless dtype says which; precision="bf16-mixed" or
   "16-mixed" trains with 16-bit storage and products (float32 X).
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .network import Network

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # older: the estimator's own method

    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


_SOLVERS = ("sgd", "adam", "adamw")


class _BaseMLP(BaseEstimator):
    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        learning_rate_init=0.001,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        schedule="constant",
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        weight_decay=0.0,
        dtype=None,
        precision="auto",
        device="cpu",
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.schedule = schedule
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.dtype = dtype
        self.precision = precision
        self.device = device
        self.verbose = verbose

    # ---- what a subclass says -------------------------------------------------------
    _loss = None

    def _encode_targets(self, y):  # -> (targets for the network, n_outputs)
        raise NotImplementedError

    # ---- fitting -----------------------------------------------------------------------
    def _optimizer(self):
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver {self.solver!r} is not available: one of {', '.join(_SOLVERS)}")
        if self.solver == "sgd":
            return dict(
                optimizer="sgd",
                lr=self.learning_rate_init,
                momentum=self.momentum,
                nesterov=bool(self.nesterovs_momentum and self.momentum > 0),
                weight_decay=self.weight_decay,
            )
        return dict(
            optimizer=self.solver,
            lr=self.learning_rate_init,
            beta1=self.beta_1,
            beta2=self.beta_2,
            eps=self.epsilon,
            weight_decay=self.weight_decay,
        )

    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if np.isscalar(sizes) else list(sizes)
        if any(int(s) != s or s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes}")
        return [int(s) for s in sizes]

    def fit(self, X, y):
        """Trains a new network on X, y; returns self."""
        X, y = _validate_data(
            self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=self._loss == "mse"
        )
        targets, n_outputs = self._encode_targets(y)
        dtype = self.dtype or (np.float32 if X.dtype == np.float32 else np.float64)
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else int(np.clip(self.batch_size, 1, n))
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        sizes = [X.shape[1]] + self._hidden() + [n_outputs]
        net = Network(sizes, self.activation, loss=self._loss, dtype=dtype,
                      precision=self.precision, device=self.device, seed=seed, max_batch=batch)
        early = bool(self.early_stopping)
        result = net.fit(
            X,
            targets,
            epochs=int(self.max_iter),
            batch=batch,
            seed=seed,
            shuffle=bool(self.shuffle),
            schedule=self.schedule,
            validation_fraction=self.validation_fraction if early else 0.0,
            patience=int(self.n_iter_no_change),
            min_delta=float(self.tol),
            restore_best=early,
            progress=bool(self.verbose),
            **self._optimizer(),
        )
        self.network_ = net
        self.n_iter_ = int(result.epochs)
        self.loss_curve_ = [e["train_loss"] for e in result.history]
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else float("nan")
        if early:
            self.validation_loss_curve_ = [e["val_loss"] for e in result.history]
        self.best_loss_ = result.best_loss
        self.n_outputs_ = n_outputs
        return self

    def _forward(self, X):
        check_is_fitted(self, "network_")
        X = _validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.network_.forward(X)

    @property
    def coefs_(self):
        """The weights as sklearn.neural_network lays them out: [n_in, n_out]
        per layer (the library's W^l transposed)."""
        check_is_fitted(self, "network_")
        return [w.T for w, _ in self.network_.get_params()]

    @property
    def intercepts_(self):
        check_is_fitted(self, "network_")
        return [b for _, b in self.network_.get_params()]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier: softmax cross-entropy over the
    classes seen in fit, trained by libbackprop. predict_proba gives the
    softmax probabilities, one column per class of classes_."""

    _loss = "ce"

    def _encode_targets(self, y):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y to learn; "
                f"got 1 class ({self.classes_[0]!r})"
            )
        return self._label_encoder.transform(y).astype(np.int32), len(self.classes_)

    def predict_proba(self, X):
        return self._forward(X).astype(np.float64, copy=False)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        p = self._forward(X)
        return self.classes_[np.argmax(p, axis=1)]

    def _more_tags(self):
        return {"binary_only": False, "multilabel": False}


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor: identity output, the 1/2-form
    squared error (sklearn's squared_error loss), trained by libbackprop.
    y may have several columns."""

    _loss = "mse"

    def _encode_targets(self, y):
        y = np.asarray(y)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(-1, 1) if self._y_1d else y
        return y2, y2.shape[1]

    def predict(self, X):
        out = self._forward(X).astype(np.float64, copy=False)
        return out.ravel() if self._y_1d else out

    def _more_tags(self):
        return {"multioutput": True}
