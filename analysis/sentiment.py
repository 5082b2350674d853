"""Three-class sentiment (negative / neutral / positive) of victims' free-text answers.

TextBlob's PatternAnalyzer polarity and subjectivity are good general cues but miss this domain:
"never heard back" and "nobody told me" carry no lexicon word, "not unhelpful" flips, and "waiting
list" is bad news. :class:`SentimentClassifier` therefore uses TextBlob's two scores as features next
to word TF-IDF and a few lexical cues (negations, thanks, exclamation), in a calibrated linear model, so
its probabilities can be shown and thresholded.

:func:`textblob_scores` calls the PatternAnalyzer's scorer directly (same numbers as
``TextBlob(text).sentiment``), skipping TextBlob's object construction, and needs no NLTK corpus.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import DataConversionWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted
from textblob.en import sentiment as _pattern_sentiment

from analysis.themes import (
    MODEL_DIR,
    TRAIN_FILE,
    ModelVersionError,
    data_sha256,
    load_labelled,
    validate_texts,
)

__all__ = [
    "LABELS",
    "SentimentClassifier",
    "SentimentModel",
    "TextBlobFeatures",
    "load_model",
    "textblob_label",
    "textblob_scores",
    "train",
]

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")


def textblob_scores(texts: Iterable[str]) -> np.ndarray:
    """TextBlob PatternAnalyzer (polarity, subjectivity) per text, shape (n, 2)."""
    rows = [_pattern_sentiment(t) if t else (0.0, 0.0) for t in texts]
    return np.asarray(rows, dtype=float).reshape(-1, 2)


def textblob_label(polarity: np.ndarray, low: float = -0.05, high: float = 0.05) -> np.ndarray:
    """TextBlob-alone baseline: polarity below ``low`` negative, above ``high`` positive, else neutral."""
    pol = np.asarray(polarity, dtype=float)
    return np.where(pol < low, "negative", np.where(pol > high, "positive", "neutral")).astype(object)


_NEGATION = re.compile(r"\b(?:not|no|never|nobody|noone|nothing|none|nowhere|neither|nor|cannot|"
                       r"\w+n'?t|no1|nothin|nobdy)\b", re.I)
_THANKS = re.compile(r"\b(?:thank\w*|ty|grateful|thx|cheers)\b", re.I)
_WORDS = re.compile(r"\w+")


def lexical_cues(texts: Sequence[str]) -> np.ndarray:
    """Negation count, thanks, exclamation and question marks, and log length per text."""
    out = np.zeros((len(texts), 5), dtype=float)
    for i, t in enumerate(texts):
        n_words = len(_WORDS.findall(t))
        out[i] = (
            np.log1p(len(_NEGATION.findall(t))),
            1.0 if _THANKS.search(t) else 0.0,
            min(t.count("!"), 3) / 3,
            min(t.count("?"), 3) / 3,
            np.log1p(n_words) / 5,
        )
    return out


class TextBlobFeatures(TransformerMixin, BaseEstimator):
    """Stateless transformer: TextBlob polarity and subjectivity, their product, and lexical cues.

    ``scores`` lets a caller pass precomputed TextBlob scores aligned with ``X`` (the pipeline scores
    each distinct text once and shares the result); it is not a parameter, only a per-call shortcut.
    """

    def __init__(self, lexical: bool = True) -> None:
        self.lexical = lexical

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.requires_fit = False
        return tags

    def fit(self, X: Any, y: Any = None) -> TextBlobFeatures:
        """Record the input width; nothing is learned."""
        validate_texts(X, self, reset=True)
        return self

    def transform(self, X: Any, scores: np.ndarray | None = None) -> np.ndarray:
        """Feature matrix of the texts: polarity, subjectivity, polarity×subjectivity [, cues]."""
        texts = validate_texts(X, self)
        tb = textblob_scores(texts) if scores is None else np.asarray(scores, dtype=float)
        if tb.shape != (len(texts), 2):
            raise ValueError("scores must have shape (n_texts, 2)")
        parts = [tb, (tb[:, 0] * tb[:, 1])[:, None]]
        if self.lexical:
            parts.append(lexical_cues(texts))
        return np.hstack(parts)


class SentimentClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated three-class sentiment classifier on texts.

    Parameters
    ----------
    C : float
        Inverse regularisation of the logistic regression.
    ngram_range : tuple of int
        Word n-grams of the TF-IDF ("not unhelpful", "never heard" need bigrams).
    textblob_weight : float
        Scale of the TextBlob and lexical features next to the TF-IDF columns.
    calibration_cv : int
        Folds of :class:`~sklearn.calibration.CalibratedClassifierCV`.
    method : "sigmoid" or "isotonic"
        Calibration method; sigmoid suits a few hundred examples.
    class_weight : "balanced" or None
        Class weighting of the regression (answers are mostly negative).
    random_state : int
        Seed of the calibration folds.
    """

    def __init__(self, C: float = 16.0, ngram_range: tuple[int, int] = (1, 2), textblob_weight: float = 2.0,
                 calibration_cv: int = 5, method: str = "sigmoid", class_weight: str | None = None,
                 random_state: int = 0) -> None:
        self.C = C
        self.ngram_range = ngram_range
        self.textblob_weight = textblob_weight
        self.calibration_cv = calibration_cv
        self.method = method
        self.class_weight = class_weight
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        return tags

    def _features(self) -> FeatureUnion:
        tfidf = TfidfVectorizer(ngram_range=self.ngram_range, sublinear_tf=True, min_df=1,
                                token_pattern=r"(?u)\b\w+\b", dtype=np.float32)
        return FeatureUnion([("tfidf", tfidf), ("textblob", TextBlobFeatures())],
                            transformer_weights={"tfidf": 1.0, "textblob": self.textblob_weight})

    def fit(self, X: Any, y: Any, scores: np.ndarray | None = None) -> SentimentClassifier:
        """Fit on texts and labels; ``scores`` are optional precomputed TextBlob scores. Returns self."""
        if y is None:
            raise ValueError("SentimentClassifier requires y to be passed, but the target y is None")
        texts = validate_texts(X, self, reset=True)
        y_arr = np.asarray(y)
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is ravelled.",
                          DataConversionWarning, stacklevel=2)
            y_arr = y_arr.ravel()
        if y_arr.ndim != 1:
            raise ValueError("y must be one label per text (1-D)")
        kind = type_of_target(y_arr)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: {kind!r}")
        if len(texts) != len(y_arr):
            raise ValueError(f"X has {len(texts)} texts but y has {len(y_arr)} labels")
        self.classes_ = np.unique(y_arr)
        if len(self.classes_) < 2:
            raise ValueError("Classifier can't train when only one class is present.")
        self.features_ = self._features()
        self.features_.fit(texts)
        F = self._transform(texts, scores)
        _, counts = np.unique(y_arr, return_counts=True)
        n_splits = int(max(2, min(self.calibration_cv, counts.min())))
        base = LogisticRegression(C=self.C, max_iter=2000, class_weight=self.class_weight)
        if counts.min() >= 2:
            cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
            self.model_ = CalibratedClassifierCV(base, method=self.method, cv=cv).fit(F, y_arr)
        else:
            # Too few examples of some class to calibrate out of fold: plain regression probabilities.
            self.model_ = base.fit(F, y_arr)
        return self

    def _transform(self, texts: list[str], scores: np.ndarray | None) -> sparse.csr_matrix:
        tfidf = self.features_.transformer_list[0][1].transform(texts)
        tb = self.features_.transformer_list[1][1].transform(texts, scores=scores)
        return sparse.hstack([tfidf, sparse.csr_matrix(tb * self.textblob_weight)], format="csr")

    def predict_proba(self, X: Any, scores: np.ndarray | None = None) -> np.ndarray:
        """Calibrated class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "model_")
        texts = validate_texts(X, self)
        return self.model_.predict_proba(self._transform(texts, scores))

    def predict(self, X: Any, scores: np.ndarray | None = None) -> np.ndarray:
        """Most probable label per text."""
        proba = self.predict_proba(X, scores=scores)
        return self.classes_[np.argmax(proba, axis=1)]


# -- the versioned model file ----------------------------------------------------------------------------
FORMAT = 1
MODEL_FILE = "sentiment-v1.joblib"


@dataclass
class SentimentModel:
    """A trained :class:`SentimentClassifier` with provenance."""

    classifier: SentimentClassifier
    training_sha256: str
    n_training: int
    sklearn_version: str
    baseline_thresholds: tuple[float, float]
    format: int = FORMAT

    @property
    def model_version(self) -> str:
        """Short identifier, e.g. ``sentiment-1a2b3c4d``."""
        return f"sentiment-{self.training_sha256[:8]}"

    def metadata(self) -> dict[str, Any]:
        """Everything but the estimator."""
        return {
            "model_version": self.model_version,
            "training_sha256": self.training_sha256,
            "n_training": self.n_training,
            "sklearn_version": self.sklearn_version,
            "baseline_thresholds": list(self.baseline_thresholds),
            "format": self.format,
        }


def tune_baseline(polarity: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Polarity thresholds for the TextBlob-alone baseline that maximise training accuracy.

    Tuned on training data so the comparison with the model is fair to TextBlob.
    """
    grid = np.round(np.arange(-0.5, 0.51, 0.025), 3)
    best, best_acc = (-0.05, 0.05), -1.0
    for lo in grid:
        for hi in grid[grid >= lo]:
            acc = float(np.mean(textblob_label(polarity, lo, hi) == y))
            if acc > best_acc + 1e-12:
                best, best_acc = (float(lo), float(hi)), acc
    return best


def train(rows: Iterable[dict[str, Any]] | None = None, save_to: Path | None = None,
          **params: Any) -> SentimentModel:
    """Train the sentiment model deterministically on the packaged training split only."""
    if rows is None:
        rows = load_labelled(TRAIN_FILE)
        sha = data_sha256(TRAIN_FILE)
    else:
        rows = list(rows)
        sha = hashlib.sha256(repr([(r["text"], r["sentiment"]) for r in rows]).encode()).hexdigest()
    rows = list(rows)
    texts = [r["text"] for r in rows]
    y = np.asarray([r["sentiment"] for r in rows], dtype=object)
    scores = textblob_scores(texts)
    clf = SentimentClassifier(**params).fit(texts, y, scores=scores)
    model = SentimentModel(
        classifier=clf,
        training_sha256=sha,
        n_training=len(rows),
        sklearn_version=sklearn.__version__,
        baseline_thresholds=tune_baseline(scores[:, 0], y),
    )
    if save_to is not None:
        path = Path(save_to) / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({"metadata": model.metadata(), "model": model}, path, compress=3)
    return model


def load_model(path: Path | None = None) -> SentimentModel:
    """Load the packaged sentiment model; ``FileNotFoundError`` if it was not shipped."""
    path = path or MODEL_DIR / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"no sentiment model at {path}")
    # joblib files are pickles: only the packaged file (or one written by train()) is loaded.
    payload = joblib.load(path)
    meta = payload.get("metadata", {}) if isinstance(payload, dict) else {}
    if meta.get("format") != FORMAT:
        raise ModelVersionError(f"{path.name}: model file format {meta.get('format')!r} != {FORMAT}")
    if meta.get("sklearn_version") != sklearn.__version__:
        warnings.warn(
            f"{path.name} was trained with scikit-learn {meta.get('sklearn_version')}, "
            f"running {sklearn.__version__}; retrain if results look wrong",
            stacklevel=2,
        )
    model: SentimentModel = payload["model"]
    return model
