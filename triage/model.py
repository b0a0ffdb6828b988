"""The trained model: built in one place, saved with skops and metadata, loaded safely.

This is the only module that imports scikit-learn and skops, and it is imported only when a
model is actually needed: `triage --help` and an idle `triage run` never pay for it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.svm import LinearSVC

from triage.context import STOPWORDS
from triage.errors import ModelError
from triage.labels import LABELS, REFUSALS

log = logging.getLogger(__name__)

#: Bumped whenever the input rows or the pipeline's shape change: older files are refused.
FEATURES_VERSION = 3
#: Hashed features: no vocabulary to store, so the file stays small and loads fast.
N_FEATURES = 2**17
WORD = re.compile(r"(?u)\b\w+\b")
#: Terms whose column is remembered, at most (about 10 MiB): words recur from mail to mail.
MAX_REMEMBERED = 100_000

#: Everything a model file may contain. skops refuses any other type at load time.
TRUSTED = [
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.feature_extraction.text.HashingVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.MaxAbsScaler",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.utils._bunch.Bunch",
    "builtins.slice",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "triage.model.words",
]


def words(text: str) -> tuple[str, ...]:
    """The words and word pairs of a (folded) text: the model's word features, and the terms
    its evidence names. Remembered for the latest texts, so that explaining a decision does
    not read the text a second time."""
    return _words(text)


@functools.lru_cache(maxsize=512)
def _words(text: str) -> tuple[str, ...]:
    tokens = WORD.findall(text)
    return (*tokens, *(f"{a} {b}" for a, b in itertools.pairwise(tokens)))


def build(c: float = 1.0) -> Pipeline:
    """Word and character n-grams of the folded text, the rule weights, a calibrated linear
    model. Rows are `[text, w_guarantee, ..., w_cannot_pay]` (see `rows`)."""

    def hashed(analyzer: Any, ngrams: tuple[int, int] = (1, 1)) -> Pipeline:
        return make_pipeline(
            HashingVectorizer(
                analyzer=analyzer,
                ngram_range=ngrams,
                n_features=N_FEATURES,
                alternate_sign=False,
                norm=None,
                lowercase=False,
                dtype=np.float64,
            ),
            TfidfTransformer(sublinear_tf=True),
        )

    features = ColumnTransformer(
        [
            ("word", hashed(words), 0),
            ("char", hashed("char_wb", (4, 4)), 0),
            ("rules", MaxAbsScaler(), list(range(1, 1 + len(REFUSALS)))),
        ]
    )
    # A linear SVM fits in seconds where logistic regression takes minutes on these
    # features; sigmoid calibration (fitted out of fold) turns its margins into probabilities.
    classifier = CalibratedClassifierCV(LinearSVC(C=c), method="sigmoid", cv=3, ensemble=False)
    return Pipeline([("features", features), ("classifier", classifier)])


def rows(texts: Sequence[str], rule_weights: Sequence[Sequence[float]]) -> np.ndarray:
    data = np.empty((len(texts), 1 + len(REFUSALS)), dtype=object)
    for i, (text, weights) in enumerate(zip(texts, rule_weights, strict=True)):
        data[i, 0] = text
        data[i, 1:] = list(weights)
    return data


@dataclass
class Model:
    pipeline: Pipeline
    meta: dict[str, Any]
    #: Term -> column of the hashed word features, for explanations (see top_terms).
    _columns: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> list[str]:
        return [str(label) for label in self.pipeline.classes_]

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.meta.get("thresholds", {}).items()}

    def probabilities(self, data: np.ndarray) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(data))

    def top_terms(self, texts: Sequence[str], labels: Sequence[str], n: int = 5) -> list[list[str]]:
        """For each text, its words and word pairs that pushed most towards its label.

        Hashing terms one by one in Python cost more than the prediction itself: the new
        terms of a batch are hashed in one call, and the columns remembered."""
        word = self.pipeline.named_steps["features"].named_transformers_["word"]
        tfidf = word.steps[1][1]
        terms = [sorted(set(words(text))) for text in texts]
        flat = list(itertools.chain.from_iterable(terms))
        if not flat:
            return [[] for _ in texts]
        known = self._columns
        if len(known) > MAX_REMEMBERED:
            known.clear()
        new = [term for term in set(flat) if term not in known]
        if new:
            columns = FeatureHasher(N_FEATURES, input_type="string", alternate_sign=False)
            hashed = columns.transform(zip(new)).indices.tolist()  # one term a row: its column
            known.update(zip(new, hashed, strict=True))
        index = np.array([known[term] for term in flat])
        estimator = self.pipeline.named_steps["classifier"].calibrated_classifiers_[0].estimator
        out: list[list[str]] = []
        start = 0
        for group, label in zip(terms, labels, strict=True):
            cols, start = index[start : start + len(group)], start + len(group)
            if label not in self.labels or not group:
                out.append([])
                continue
            weight = estimator.coef_[self.labels.index(label)][cols] * tfidf.idf_[cols]
            positive = np.flatnonzero(weight > 0)
            telling = (group[i] for i in positive[np.argsort(-weight[positive])])
            meaningful = (t for t in telling if not all(w in STOPWORDS for w in t.split()))
            out.append(list(itertools.islice(meaningful, n)))
        return out


def fit(data: np.ndarray, labels: Sequence[str], c: float = 1.0) -> Pipeline:
    pipeline = build(c)
    pipeline.fit(data, list(labels))
    return pipeline


def versions() -> dict[str, str]:
    return {
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
    }


def save(pipeline: Pipeline, directory: Path, meta: dict[str, Any]) -> Path:
    """Write model.skops and model.json into `directory` (written aside, then renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.skops"
    tmp = directory / "model.skops.tmp"
    skops.io.dump(pipeline, tmp, compression=zipfile.ZIP_DEFLATED)
    meta = {
        **meta,
        "labels": list(LABELS),
        "features_version": FEATURES_VERSION,
        "versions": versions(),
        "sha256": hashlib.sha256(tmp.read_bytes()).hexdigest(),
    }
    meta_tmp = directory / "model.json.tmp"
    meta_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    meta_tmp.replace(directory / "model.json")
    return path


def load(directory: Path) -> Model:
    """A model and its metadata, checked; any problem is one ModelError saying what to do."""
    path, meta_path = directory / "model.skops", directory / "model.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelError(
            f"no model at {directory} ({Path(str(exc.filename)).name} missing)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the model metadata in {directory}: {exc}") from None
    if meta.get("sha256") != hashlib.sha256(raw).hexdigest():
        raise ModelError(
            f"{path} does not match its metadata (corrupt or replaced); "
            "retrain with `triage train` or `triage model use shipped`"
        )
    if meta.get("features_version") != FEATURES_VERSION or meta.get("labels") != list(LABELS):
        raise ModelError(
            f"{path} was made by another version of triage; retrain it with `triage train`"
        )
    try:
        untrusted = [t for t in skops.io.get_untrusted_types(data=raw) if t not in TRUSTED]
        if untrusted:
            raise ModelError(
                f"{path} contains types triage does not trust: "
                f"{', '.join(untrusted)}; it was not loaded"
            )
        pipeline = skops.io.load(path, trusted=TRUSTED)
    except ModelError:
        raise
    except Exception as exc:  # skops raises many types on a damaged archive
        raise ModelError(f"cannot load {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(pipeline, Pipeline):
        raise ModelError(f"{path} does not hold a triage model")
    trained = str(meta.get("versions", {}).get("scikit-learn", ""))
    if trained.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        log.warning(
            "%s was trained with scikit-learn %s, this is %s: retrain it with "
            "`triage train` if decisions look wrong",
            path,
            trained or "?",
            sklearn.__version__,
        )
    return Model(pipeline, meta)


def cross_validate(
    data: np.ndarray, truth: Sequence[str], folds: int, c: float, say: Any
) -> tuple[list[list[float]], list[str]]:
    """Out-of-fold probabilities for every row, fold by fold so progress can be shown."""
    from sklearn.model_selection import StratifiedKFold

    labels = sorted(set(truth))
    target = np.asarray(truth)
    probs = np.zeros((len(truth), len(labels)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=7)
    for number, (train, test) in enumerate(splitter.split(data, target), 1):
        say(f"cross-validating: fold {number}/{folds}")
        pipeline = fit(data[train], target[train].tolist(), c)
        fold_probs = pipeline.predict_proba(data[test])
        for j, label in enumerate(pipeline.classes_):
            probs[test, labels.index(str(label))] = fold_probs[:, j]
    return probs.tolist(), labels
