"""Three-class sentiment (negative / neutral / positive) of victims' free-text answers.

TextBlob's PatternAnalyzer polarity and subjectivity are good general cues but miss this domain:
"never heard back" and "nobody told me" carry no lexicon word, "not unhelpful" flips, and "waiting
list" is bad news. :class:`SentimentClassifier` therefore uses TextBlob's two scores (with polarity
bands, so a linear model can learn that a strong score on a two-word answer is decisive) as features
next to:

- word TF-IDF in which the words after a negation are marked ("nobody made me feel stupid" gives
  ``not_stupid``), so the model can learn that a negated complaint is praise;
- ``char_wb`` TF-IDF, which survives misspellings and text-speak ("waitin", "rly", "no1");
- :class:`SentimentCues`: counts of a small domain lexicon of good and bad news in victims' answers,
  flipped under negation, and of the phrasing of suggestions and plain facts (mostly neutral);
- a few lexical cues (negations, thanks, exclamation, length),

in a calibrated linear model, so its probabilities can be shown and thresholded.

:func:`textblob_scores` calls the PatternAnalyzer's scorer directly (same numbers as
``TextBlob(text).sentiment``), skipping TextBlob's object construction, and needs no NLTK corpus.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
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
    StatelessTextTransformer,
    data_sha256,
    load_labelled,
    validate_texts,
)

__all__ = [
    "LABELS",
    "SentimentClassifier",
    "SentimentCues",
    "SentimentModel",
    "TextBlobFeatures",
    "load_model",
    "negated_terms",
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


# -- negation-aware words and the domain lexicon ------------------------------------------------------
# Written from general knowledge of how people describe help and harm, not lifted from particular
# answers. Tokens are lower-cased words with apostrophes removed ("didn't" -> "didnt"), so the
# apostrophe-less spellings common in survey answers match too.
_TERM = re.compile(r"[a-z0-9£']+|[.!?;:,()]")
NEGATORS = frozenset((
    "not", "no", "never", "nobody", "noone", "none", "nothing", "neither", "nor", "cannot", "cant", "dont",
    "didnt", "doesnt", "wasnt", "werent", "isnt", "arent", "wont", "wouldnt", "couldnt", "shouldnt", "havent",
    "hasnt", "hadnt", "aint", "without", "hardly", "barely", "no1", "nobdy", "nothin", "nuthin",
))
# A negation reaches to the end of its clause, at most ``scope`` words.
_SCOPE_BREAK = frozenset((".", "!", "?", ";", ":", ",", "(", ")", "but", "however", "although", "though",
                          "except"))
NEGATIVE_CUES = (
    r"awful|terrible|horrendous|horrible|useless|pointless|rubbish|shocking|disgusting|appalling|disgrace\w*"
    r"|joke|waste|wasted|worst|worse|bad|poor|rude|dismissive|dismiss\w*|abrupt|cold|ignored|ignor\w*|laugh\w*"
    r"|fobbed|patroni[sz]\w*|condescend\w*|judg\w*|blam\w*|disbeliev\w*|accus\w*|ashamed|shame\w*"
    r"|embarr?ass\w*|humiliat\w*|scared|afraid|terrified|frightened|fear\w*|anxious|anxiety|panic\w*"
    r"|nightmares?|flashbacks?|cry|crying|cried|struggl\w*|alone|lonely|isolated|abandoned|dropped|stopped"
    r"|ended|chas\w*|waiting|waited|wait|waitin|delay\w*|adjourn\w*|cancelled|postponed|backlog|ages|lost"
    r"|stolen|debts?|evict\w*|homeless|unsafe|worr\w*|upset|angry|furious|gutted|devastated|broken"
    r"|exhausted|letdown|failed|failing|fail|nightmare|hopeless|helpless|ruined|damaged|suicidal|depress\w*"
    r"|dread\w*|hate|hated|sick|nuisance|stupid|silly|thick|troublemaker|rushed|rushing|lectur\w*|unhelpful"
    r"|problems?|issues?|fault|bother\w*|hassle|shambles|pathetic|disappoint\w*|unacceptable|unbelievable"
    r"|ridiculous|scandal\w*|neglect\w*"
)
POSITIVE_CUES = (
    r"brilliant|amazing|fab|fabulous|fantastic|excellent|great|lovely|wonderful|superb|outstanding|helpful"
    r"|helped|helping|help|supportive|support|kind|kindness|patient|caring|compassionate|understanding"
    r"|reassur\w*|thank\w*|thx|ty|grateful|appreciat\w*|lifeline|godsend|relief|relieved|safe|safer|better"
    r"|improved|recover\w*|confident|confidence|calm|believed|listened|valued|respected|respect|happy|pleased"
    r"|glad|brill|star|stars|angel|perfect|recommend\w*|professional|thorough|quick|prompt|good|useful|sound"
    r"|bearable|reasonable|nice|decent|ace|spot|faultless|efficient|turning"
)
NEGATIVE_PHRASES = (
    "never heard", "heard nothing", "no one", "nobody", "no1", "no help", "no support", "not told",
    "never told", "still waiting", "let down", "let me down", "fobbed off", "in the dark", "on my own",
    "waste of time", "no idea", "didnt know", "did not know", "not believed", "put back",
    "no further action", "not guilty", "closed my case", "no contact", "no update", "no updates",
    "no news", "nothing happened", "nothing was done", "did nothing",
)
POSITIVE_PHRASES = (
    "thank you", "made a difference", "saved my life", "couldnt have", "could not have", "cant fault",
    "couldnt fault", "cannot fault", "no complaints", "cant thank", "my life back", "on my side", "felt safe",
    "feel safe", "feel safer", "taken seriously", "kept me informed", "kept me updated", "kept in touch",
    "got back to me", "over and above", "above and beyond", "went out of", "couldnt ask", "could not ask",
    "no problem", "no problems", "no pressure", "without them", "without her", "without him", "found guilty",
)
# Suggestions, wishes and plain facts: mostly neutral however strong their words.
NEUTRAL_PHRASES = (
    "would be", "would help", "would like", "id like", "it would", "could be", "maybe", "perhaps", "please",
    "n a", "na", "nothing else", "nothing to add", "no thanks", "not sure", "dont know", "prefer",
    "i was referred", "reported it", "happened", "the crime", "the incident", "should be", "more information",
    "i think", "it might",
)
_NEGATIVE_RE = re.compile(NEGATIVE_CUES)
_POSITIVE_RE = re.compile(POSITIVE_CUES)
# Phrases padded with spaces, to count them as whole words in " ".join(words).
_PADDED = tuple(tuple(f" {p} " for p in group)
                for group in (NEGATIVE_PHRASES, POSITIVE_PHRASES, NEUTRAL_PHRASES))
_word_cues: dict[str, tuple[int, int]] = {}


def _terms(text: str) -> list[str]:
    return [t.replace("'", "") for t in _TERM.findall(text.lower())]


def negated_terms(text: str, scope: int = 4, ngram_range: tuple[int, int] = (1, 2)) -> list[str]:
    """Word n-grams of ``text`` with the words after a negation marked ``not_`` (a TF-IDF analyzer).

    "nobody made me feel stupid" gives ``nobody``, ``not_made`` … ``not_stupid`` and their bigrams;
    punctuation and "but" end the negation.
    """
    words: list[str] = []
    left = 0
    for t in _terms(text):
        if t in _SCOPE_BREAK:
            left = 0
            continue
        if t in NEGATORS:
            words.append(t)
            left = scope
        elif left > 0:
            words.append("not_" + t)
            left -= 1
        else:
            words.append(t)
    lo, hi = ngram_range
    out = words[:] if lo <= 1 else []
    for n in range(max(2, lo), hi + 1):
        out.extend(" ".join(words[k:k + n]) for k in range(len(words) - n + 1))
    return out


def _word_polarity(token: str) -> tuple[int, int]:
    # Memoised per word: the set of words people use is small next to the number of answers.
    hit = _word_cues.get(token)
    if hit is None:
        hit = (int(_NEGATIVE_RE.fullmatch(token) is not None), int(_POSITIVE_RE.fullmatch(token) is not None))
        if len(_word_cues) > 200_000:
            _word_cues.clear()
        _word_cues[token] = hit
    return hit


def sentiment_cues(texts: Sequence[str], scope: int = 5) -> np.ndarray:
    """Per text, log counts of: bad-news words, good-news words, negated good-news words ("not
    helpful"), negated bad-news words ("never rushed"), bad-news phrases, good-news phrases, neutral
    phrasing, and a flag for answers of at most three words; shape (n_texts, 8)."""
    out = np.zeros((len(texts), 8), dtype=float)
    for i, text in enumerate(texts):
        terms = _terms(text)
        neg = pos = neg_flipped = pos_flipped = left = 0
        for t in terms:
            if t in _SCOPE_BREAK:
                left = 0
                continue
            if t in NEGATORS:
                left = scope
                continue
            n, p = _word_polarity(t)
            if left > 0:
                neg_flipped += p
                pos_flipped += n
                left -= 1
            else:
                neg += n
                pos += p
        words = [t for t in terms if t not in _SCOPE_BREAK]
        joined = " " + " ".join(words) + " "
        neg_ph, pos_ph, neutral_ph = (sum(joined.count(p) for p in group) for group in _PADDED)
        out[i] = (neg, pos, neg_flipped, pos_flipped, neg_ph, pos_ph, neutral_ph, len(words) <= 3)
    out[:, :7] = np.log1p(out[:, :7])
    return out


class SentimentCues(StatelessTextTransformer):
    """Stateless transformer: :func:`sentiment_cues` of the texts (domain lexicon, negation-aware).

    ``scope`` is how many words after a negation are read as negated.
    """

    def __init__(self, scope: int = 5) -> None:
        self.scope = scope

    def transform(self, X: Any) -> np.ndarray:
        """Cue features of the texts, shape (n_texts, 8)."""
        return sentiment_cues(validate_texts(X, self), self.scope)


class TextBlobFeatures(StatelessTextTransformer):
    """Stateless transformer: TextBlob polarity and subjectivity, their product, and lexical cues.

    With ``bands`` it adds one-hot polarity bands (strongly/mildly negative, about zero, mildly/strongly
    positive), a flag for "no lexicon word at all" (subjectivity 0), and polarity on short answers
    (polarity and its size on answers of at most four words, and polarity over log2 of the length), so
    a linear model can learn that "Awful." is decisive while a long account scoring -0.1 is not.

    ``scores`` lets a caller pass precomputed TextBlob scores aligned with ``X`` (the pipeline scores
    each distinct text once and shares the result); it is not a parameter, only a per-call shortcut.
    """

    def __init__(self, lexical: bool = True, bands: bool = False) -> None:
        self.lexical = lexical
        self.bands = bands

    def transform(self, X: Any, scores: np.ndarray | None = None) -> np.ndarray:
        """Feature matrix of the texts: polarity, subjectivity, polarity×subjectivity [, cues]."""
        texts = validate_texts(X, self)
        tb = textblob_scores(texts) if scores is None else np.asarray(scores, dtype=float)
        if tb.shape != (len(texts), 2):
            raise ValueError("scores must have shape (n_texts, 2)")
        pol = tb[:, 0]
        parts = [tb, (pol * tb[:, 1])[:, None]]
        if self.lexical:
            parts.append(lexical_cues(texts))
        if self.bands:
            n_words = np.fromiter((len(t.split()) for t in texts), dtype=float, count=len(texts))
            short = n_words <= 4
            parts.append(np.column_stack([
                pol < -0.3, (pol >= -0.3) & (pol < -0.05), (pol >= -0.05) & (pol <= 0.05),
                (pol > 0.05) & (pol <= 0.3), pol > 0.3, tb[:, 1] == 0,
                pol * short, np.abs(pol) * short, pol / np.log2(n_words + 2),
            ]).astype(float))
        return np.hstack(parts)


class SentimentClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated three-class sentiment classifier on texts.

    Parameters
    ----------
    C : float
        Inverse regularisation of the logistic regression.
    ngram_range : tuple of int
        Word n-grams of the TF-IDF ("not unhelpful", "never heard" need bigrams).
    negation_scope : int
        Words after a negation that the word TF-IDF marks ``not_`` (:func:`negated_terms`); 0 leaves
        words unmarked.
    char_ngram_range : tuple of int or None
        N-grams of the ``char_wb`` TF-IDF (misspellings, text-speak); ``None`` leaves it out.
    textblob_weight : float
        Scale of the TextBlob and lexical features next to the TF-IDF columns.
    cue_weight : float
        Scale of the :class:`SentimentCues` domain-lexicon features; 0 leaves them out.
    calibration_cv : int
        Folds of :class:`~sklearn.calibration.CalibratedClassifierCV`.
    method : "sigmoid" or "isotonic"
        Calibration method; sigmoid suits a few hundred examples.
    class_weight : "balanced" or None
        Class weighting of the regression (answers are mostly negative).
    random_state : int
        Seed of the calibration folds.
    """

    def __init__(self, C: float = 50.0, ngram_range: tuple[int, int] = (1, 2), negation_scope: int = 4,
                 char_ngram_range: tuple[int, int] | None = (3, 4), textblob_weight: float = 2.0,
                 cue_weight: float = 1.0, calibration_cv: int = 5, method: str = "sigmoid",
                 class_weight: str | None = None, random_state: int = 0) -> None:
        self.C = C
        self.ngram_range = ngram_range
        self.negation_scope = negation_scope
        self.char_ngram_range = char_ngram_range
        self.textblob_weight = textblob_weight
        self.cue_weight = cue_weight
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
        if self.negation_scope:
            analyzer = partial(negated_terms, scope=self.negation_scope, ngram_range=self.ngram_range)
            tfidf = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, min_df=1, dtype=np.float32)
        else:
            tfidf = TfidfVectorizer(ngram_range=self.ngram_range, sublinear_tf=True, min_df=1,
                                    token_pattern=r"(?u)\b\w+\b", dtype=np.float32)
        parts: list[tuple[str, Any]] = [("tfidf", tfidf)]
        weights = {"tfidf": 1.0, "textblob": self.textblob_weight, "cues": self.cue_weight}
        if self.char_ngram_range is not None:
            parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=self.char_ngram_range,
                                                  sublinear_tf=True, min_df=2, dtype=np.float32)))
        parts.append(("textblob", TextBlobFeatures(bands=True)))
        if self.cue_weight:
            parts.append(("cues", SentimentCues()))
        return FeatureUnion(parts, transformer_weights={name: weights.get(name, 1.0) for name, _ in parts})

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
        # The union's parts are applied by hand so that precomputed TextBlob scores reach their part.
        weights = self.features_.transformer_weights or {}
        blocks = []
        for name, part in self.features_.transformer_list:
            block = part.transform(texts, scores=scores) if name == "textblob" else part.transform(texts)
            w = weights.get(name, 1.0)
            blocks.append(block * w if sparse.issparse(block) else sparse.csr_matrix(block * w))
        return sparse.hstack(blocks, format="csr")

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
# 2: negation-marked word TF-IDF, char TF-IDF, polarity bands and SentimentCues (files of format 1 hold
# a classifier without them and are refused rather than failing at predict time).
FORMAT = 2
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
