"""Multi-label theme classifier for victims' free-text answers, and its versioned model file.

The classifier is a scikit-learn estimator: TF-IDF word 1-2 grams and ``char_wb`` 3-5 grams (which
survive misspellings and text-speak such as "counselin" or "no1") feed one logistic regression per
theme. Each theme gets its own decision threshold, chosen by cross-validation on the training data
only, because themes differ a lot in how sure the model can be (``housing`` has telling words,
``respect`` does not).

The trained model is saved with its codebook version, the codebook fingerprint and the sha256 of the
training data; :func:`load_model` refuses a model trained on another codebook version.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Self

import joblib
import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.exceptions import DataConversionWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from analysis.codebook import Codebook, load_codebook

__all__ = [
    "ModelVersionError",
    "ThemeClassifier",
    "ThemeModel",
    "add_labelled",
    "as_texts",
    "load_labelled",
    "load_model",
    "model_path",
    "split_of",
    "train",
    "tune_thresholds",
    "validate_texts",
]

TRAIN_FILE = "themes-train.jsonl"
TEST_FILE = "themes-test.jsonl"
MODEL_DIR = Path(__file__).resolve().parent / "models"
DATA_DIR = Path(__file__).resolve().parent / "data"
#: Share of the labelled answers held out for evaluation (see :func:`split_of`).
TEST_SHARE = 0.22
#: The first corpus row placed by :func:`split_of`; rows before it keep the split they were written with.
SPLIT_RULE_FROM = 892


class ModelVersionError(RuntimeError):
    """A saved model does not match the codebook (or file format) it is being used with."""


# -- text input --------------------------------------------------------------------------------------
def as_texts(X: Any) -> list[str]:
    """Turn estimator input into a list of documents.

    Accepts a sequence of strings (the normal case) or a 2-D array-like, whose row cells are joined
    with spaces into one document, as when several free-text columns of a table are analysed together.
    ``None`` and NaN cells count as empty; a bare string is refused because it is almost always a bug
    (one answer passed instead of a list of answers).
    """
    if isinstance(X, str | bytes):
        raise ValueError("expected a sequence of texts, got a single string")
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError("text estimators do not take sparse matrices; pass the texts")
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 1:
        return [_cell(v) for v in arr]
    if arr.ndim == 2:
        return [" ".join(_cell(v) for v in row) for row in arr]
    raise ValueError(f"expected a 1-D sequence of texts or a 2-D table, got {arr.ndim} dimensions")


def _is_label_lists(y: Any) -> bool:
    """True for ``[["housing"], [], ["safety", "respect"]]``; False for 0/1 rows or a label array."""
    if not isinstance(y, list | tuple) or not y:
        return False
    if not all(isinstance(v, list | tuple | set | frozenset) for v in y):
        return False
    return all(isinstance(item, str) for v in y for item in v)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def validate_texts(X: Any, estimator: Any = None, *, reset: bool = False) -> list[str]:
    """Check estimator input and return its documents (see :func:`as_texts`).

    Applies scikit-learn's input rules to text: no complex numbers, at least one sample and one column,
    1-D input must hold strings (a 1-D array of numbers is a mistake, not a list of answers), and the
    number of columns must match fit. With ``reset`` it records ``n_features_in_`` on ``estimator``.
    """
    if isinstance(X, str | bytes):
        raise ValueError("expected a sequence of texts, got a single string")
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError("text estimators do not take sparse matrices; pass the texts")
    try:
        raw = np.asarray(X)
    except ValueError:
        raw = np.asarray(X, dtype=object)
    if raw.dtype.kind == "c":
        raise ValueError("Complex data not supported")
    if raw.ndim not in (1, 2):
        raise ValueError(f"expected a 1-D sequence of texts or a 2-D table, got {raw.ndim} dimensions")
    if raw.ndim == 2 and raw.shape[1] == 0:
        raise ValueError(f"0 feature(s) (shape={raw.shape}) while a minimum of 1 is required.")
    if raw.shape[0] == 0:
        raise ValueError(f"0 sample(s) (shape={raw.shape}) while a minimum of 1 is required.")
    if raw.ndim == 1 and raw.dtype.kind in "biuf":
        raise ValueError(
            "Expected a sequence of texts, got 1-D numbers. Reshape your data either using "
            "array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) "
            "if it contains a single sample."
        )
    n_columns = 1 if raw.ndim == 1 else int(raw.shape[1])
    if estimator is not None:
        if reset:
            estimator.n_features_in_ = n_columns
        elif hasattr(estimator, "n_features_in_") and n_columns != estimator.n_features_in_:
            name = type(estimator).__name__
            if raw.ndim == 1:
                raise ValueError(
                    f"{name} was fitted on {estimator.n_features_in_} columns but got 1-D texts. "
                    "Reshape your data to the table shape used in fit."
                )
            raise ValueError(
                f"X has {n_columns} features, but {name} is expecting {estimator.n_features_in_} "
                "features as input."
            )
    if raw.ndim == 1:
        return [_cell(v) for v in raw.tolist()]
    return [" ".join(_cell(v) for v in row) for row in raw.tolist()]


# -- cue vocabulary ---------------------------------------------------------------------------------------
# Generic cue words per theme, written from the codebook's descriptions and general knowledge of victims'
# services, not lifted from particular answers: variants, jargon and misspellings that a single word
# feature would miss with a few hundred training answers ("cps", "magistrates" and "jury" all point at
# the justice process). Tokens are regular expressions matched against whole lower-cased words with
# apostrophes removed; phrases are literal word sequences.
CUE_TOKENS: dict[str, str] = {
    "police_response": r"police|polic\w*|officers?|cops?|pc|pcso|detectives?|dc|101|999|bobby|btp|station"
                       r"|arrest\w*|patrols?|soit|attended|enquir\w*|forensics?|investigat\w*|report\w*",
    "no_information": r"leaflets?|information|info|existed|exists|jargon|advertis\w*|posters?|kno|signpost\w*"
                      r"|aware|unaware|entitled",
    "not_kept_informed": r"updates?|updated|chas(?:e|ed|ing)|silence|news|letters?|outcome|progress|released"
                         r"|bail\w*|informed|uninformed",
    "stigma_belief": r"believ\w*|disbeliev\w*|blam\w*|fault|asham\w*|shame\w*|embarrass\w*|stupid|foolish"
                     r"|judg\w*|deserv\w*|worthy|unworthy|lying|liar|fuss|overreact\w*|proud|humiliat\w*"
                     r"|guilt\w*|stigma|accus\w*|doubt\w*",
    "practical_access": r"childcare|bus|buses|trains?|transport|taxis?|drive|driving|petrol|fares?|parking"
                        r"|rural\w*|village|miles|internet|online|wifi|signal|data|computer|website"
                        r"|interpreters?|translat\w*|language|english|wheelchair|disab\w*|deaf|blind|stairs"
                        r"|lift|housebound|autis\w*|shifts?|evenings?|weekends?|saturdays?|sundays?|daytime"
                        r"|carer|access\w*|travel\w*",
    "waiting_times": r"wait\w*|waitlist|list|delay\w*|backlog|stretched|overstretched|overwhelmed|shortages?"
                     r"|allocated|quick\w*|prompt\w*|within|limbo|caseloads?|months?|weeks?|ages|years?|slow\w*",
    "justice_process": r"court|trial|cps|charges?|charged|prosecut\w*|sentenc\w*|judge|jury|magistrates?"
                       r"|barrister|defence|solicitor|evidence|witness\w*|guilty|verdict|acquit\w*|dropped|nfa"
                       r"|discontinued|caution|suspended|justice|adjourn\w*|breach\w*|screen|inquest|plea"
                       r"|pleaded|convict\w*|fined?|restorative|prison|jail|offender|hearing",
    "mental_health": r"counsell?\w*|counselin|therap\w*|ptsd|trauma\w*|anxiety|anxious|panic|depress\w*"
                     r"|nightmares?|flashbacks?|breakdown|gp|doctor|antidepressants?|medication|tablets|pills"
                     r"|camhs|emdr|cope|coping|nerves|sleep\w*|confidence|mood|withdrawn|hypervigilan\w*"
                     r"|struggl\w*|wellbeing|psycholog\w*|psychiatr\w*|suicid\w*|selfharm",
    "housing": r"hous\w*|home\w*|refuge|move|moving|moved|flat|tenan\w*|landlord|rent|deposit|hostel|sofa"
               r"|accommodation|evict\w*|transfer|sanctuary|keys?|estate|council|live|living|address"
               r"|relocat\w*",
    "support_ended": r"ended|ending|stopped|stops?|closed|close|discharg\w*|limited|finished|followup"
                     r"|left|leaving|funding|18|soon|limit|abandon\w*|ongoing|longer|short|lasted|anymore"
                     r"|sessions",
    "coordination": r"agenc\w*|repeat\w*|story|passed|bounced|referrals?|referred|coordinat\w*|shar\w*"
                    r"|contradict\w*|services|responsibility|ownership|communicat\w*|joined",
    "safety": r"safe|safer|safety|unsafe|scared|fear\w*|frighten\w*|terrif\w*|afraid|alarm|locks?|doorbell"
              r"|cameras?|cctv|marker|shoulder|watch\w*|outside|knife|again|released|prison|dark|doors?"
              r"|security|secure|protect\w*|threat\w*|worr\w*",
    "financial": r"£\d[\d,.]*|money|costs?|pay\w*|paid|afford\w*|debts?|loans?|credit|banks?|refund\w*"
                 r"|compensat\w*|cica|insurance|excess|grants?|fund\w*|savings|pension|income|jobs?|wages?"
                 r"|unpaid|benefits|arrears|expenses|replac\w*|stole\w*|stolen|nicked|penny|pounds|grand"
                 r"|fortune|foodbank|budget|redundan\w*|thousands|broke|financ\w*|property|damage",
    "respect": r"respect\w*|disrespect\w*|dignity|kind\w*|compassion\w*|empath\w*|patient|patience|polite"
               r"|rude|dismissive|dismissed|condescend\w*|patroni[sz]\w*|judg\w*|listen\w*|listend|laugh\w*"
               r"|eyes|smirk\w*|treated|human|person|nuisance|inconvenience|bored|pronouns|gentle"
               r"|understanding|calm|car(?:e|ed|es|ing)|abrupt|humiliat\w*|cold|sympath\w*|warm|attitude",
    "positive_support": r"help(?:ed|ful|ing)?|worker|lifeline|brilliant|amazing|fantastic|fab|great|lovely"
                        r"|excellent|godsend|difference|grateful|thank\w*|relief|advocate|volunteer|isva|idva"
                        r"|befriend\w*|best|understood|better|reassur\w*|useful|supportive|lifesaver|star"
                        r"|invaluable",
}
CUE_PHRASES: dict[str, tuple[str, ...]] = {
    "police_response": ("came out", "crime number", "crime reference", "action fraud", "did nothing",
                        "taken seriously", "no officers"),
    "no_information": ("didnt know", "didnt even know", "did not know", "no idea", "never knew",
                       "nobody told me", "no one told me", "noone told me", "no1 told", "wasnt told",
                       "where to go", "where to get",
                       "where to turn", "where to look", "who to call", "who to contact", "who to go",
                       "who to ring", "found out about", "known sooner", "how to get", "how to find",
                       "how to access", "how to apply"),
    "not_kept_informed": ("heard nothing", "heard back", "heard anything", "never heard", "no news",
                          "kept informed", "kept me informed", "kept updated", "kept me updated",
                          "kept in touch", "in the dark", "found out from", "found out through",
                          "found out when", "found out via", "never told", "not told", "let me know",
                          "keep me informed", "in the loop"),
    "stigma_belief": ("my fault", "own fault", "made it up", "making it up", "wasting their time",
                      "wasting police time", "wasting your time", "should have", "on my own", "bad mum",
                      "bad mother", "bad parent", "word against"),
    "practical_access": ("child care", "hour away", "working hours", "9 to 5", "office hours", "in the day",
                         "time off", "at work", "easy read", "learning difficulties", "phone sessions",
                         "video call", "home visit", "home visits", "get to the", "get there"),
    "waiting_times": ("waiting list", "took ages", "took so long", "on hold", "call back", "callback",
                      "get back to me", "got back to me", "same day", "next day", "too long",
                      "still waiting"),
    "justice_process": ("no further action", "cross examined", "cross examination", "restraining order",
                        "protection order", "personal statement", "special measures", "video link",
                        "community order", "found guilty", "not guilty"),
    "mental_health": ("mental health", "panic attacks", "self harm", "crisis team", "talking therapies",
                      "on edge", "signed off"),
    "housing": ("b and b", "b b", "somewhere to live", "place to live", "new home"),
    "support_ended": ("time limit", "time limited", "only lasted", "after court", "after the trial",
                      "after sentencing", "step down", "follow up", "check in", "ran out", "too short",
                      "too soon", "nothing after", "on my own", "kept supporting", "carried on", "no more",
                      "any more", "case closed", "closed my case", "dropped me"),
    "coordination": ("over again", "from scratch", "pillar to post", "ping pong", "each other", "joined up",
                     "one point", "one number", "one person", "key worker", "different people",
                     "different services", "different agencies", "too many", "so many", "same questions",
                     "someone elses", "round and round", "fell through", "main contact",
                     "talk to each other"),
    "safety": ("panic button", "turned up", "turns up", "turning up", "where i live", "where we live",
               "see him", "in control", "happen again"),
    "financial": ("sick pay", "universal credit", "food bank", "took my", "lost my", "lost all"),
    "respect": ("talked down", "talk down", "spoke to me", "made me feel", "treated me", "like a"),
    "positive_support": ("support worker", "someone to talk", "talk to", "talking to", "2 talk",
                         "saved my life", "changed my life", "made a difference", "weight off",
                         "without her", "without them", "without him", "really good", "less alone",
                         "my life back", "kept me going", "there for me", "end of the phone",
                         "looked forward", "look forward"),
}
_TOKEN = re.compile(r"[a-z0-9£']+")
_CUE_CODES: tuple[str, ...] = tuple(CUE_TOKENS)
_CUE_TOKEN_RES = [re.compile(rf"(?:{CUE_TOKENS[c]})") for c in _CUE_CODES]
_PHRASE_INDEX: dict[str, tuple[int, ...]] = {}
for _j, _code in enumerate(_CUE_CODES):
    for _phrase in CUE_PHRASES.get(_code, ()):
        _PHRASE_INDEX[_phrase] = (*_PHRASE_INDEX.get(_phrase, ()), _j)
_PHRASE_FIRST = {p.split()[0] for p in _PHRASE_INDEX}
_token_cache: dict[str, tuple[int, ...]] = {}


def _token_themes(token: str) -> tuple[int, ...]:
    # The set of words people use is small next to the number of answers, so memoising per word makes
    # regex matching a dictionary lookup after warm-up.
    hit = _token_cache.get(token)
    if hit is None:
        hit = tuple(j for j, rx in enumerate(_CUE_TOKEN_RES) if rx.fullmatch(token))
        if len(_token_cache) > 200_000:
            _token_cache.clear()
        _token_cache[token] = hit
    return hit


def cue_counts(texts: Sequence[str]) -> np.ndarray:
    """Count cue words and phrases of each theme per text; shape (n_texts, n_cue_themes)."""
    out = np.zeros((len(texts), len(_CUE_CODES)), dtype=np.float32)
    for i, text in enumerate(texts):
        tokens = [t.replace("'", "") for t in _TOKEN.findall(text.lower())]
        row = out[i]
        for k, tok in enumerate(tokens):
            for j in _token_themes(tok):
                row[j] += 1
            if tok in _PHRASE_FIRST:
                for n in (2, 3, 4):
                    hit = _PHRASE_INDEX.get(" ".join(tokens[k:k + n]))
                    if hit:
                        for j in hit:
                            row[j] += 1
    return out


class StatelessTextTransformer(TransformerMixin, BaseEstimator):
    """A transformer of raw texts that learns nothing: `fit` only checks the input and records its width."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.requires_fit = False
        # Text in, numbers out: there is no input float dtype to preserve.
        tags.transformer_tags.preserves_dtype = []
        return tags

    def fit(self, X: Any, y: Any = None) -> Self:
        """Record the input width; nothing is learned."""
        validate_texts(X, self, reset=True)
        return self


class ThemeCues(StatelessTextTransformer):
    """Stateless transformer: log-scaled counts of each theme's cue vocabulary, times ``weight``.

    ``weight`` sets how loud the cues are next to thousands of TF-IDF columns under the same
    regularisation.
    """

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def transform(self, X: Any) -> np.ndarray:
        """Cue features of the texts, shape (n_texts, n_themes)."""
        texts = validate_texts(X, self)
        return np.log1p(cue_counts(texts)) * np.float32(self.weight)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``cue__<theme code>`` per column."""
        return np.asarray([f"cue__{c}" for c in _CUE_CODES], dtype=object)


def text_features(word_ngram_range: tuple[int, int] = (1, 2),
                  char_ngram_range: tuple[int, int] | None = (3, 5),
                  max_features: int | None = 60000, cue_weight: float = 1.0) -> FeatureUnion:
    """TF-IDF of words and of characters within word boundaries, plus theme cue counts, side by side."""
    # sublinear_tf: a long answer repeating "police" is not more about the police than a short one.
    word = TfidfVectorizer(
        analyzer="word", ngram_range=word_ngram_range, sublinear_tf=True, min_df=1,
        token_pattern=r"(?u)\b\w+\b", lowercase=True, max_features=max_features, dtype=np.float32,
    )
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=char_ngram_range or (3, 5), sublinear_tf=True, min_df=2,
        lowercase=True, max_features=max_features, dtype=np.float32,
    )
    parts: list[tuple[str, Any]] = [("word", word)]
    if char_ngram_range is not None:
        parts.append(("char", char))
    if cue_weight:
        parts.append(("cues", ThemeCues(weight=cue_weight)))
    return FeatureUnion(parts)


def tune_thresholds(scores: np.ndarray, Y: np.ndarray, grid: Sequence[float] | None = None,
                    default: float = 0.5) -> np.ndarray:
    """Per-column threshold on ``scores`` maximising F1 against indicator matrix ``Y``.

    Ties go to the threshold closest to ``default`` so that a flat F1 curve does not push a theme to
    an extreme; columns with no positives keep ``default``.
    """
    grid_arr = np.asarray(grid if grid is not None else np.round(np.arange(0.05, 0.951, 0.025), 3))
    thresholds = np.full(Y.shape[1], default, dtype=float)
    for j in range(Y.shape[1]):
        y = Y[:, j].astype(bool)
        if not y.any():
            continue
        pred = scores[:, j][:, None] >= grid_arr[None, :]
        tp = (pred & y[:, None]).sum(axis=0)
        fp = (pred & ~y[:, None]).sum(axis=0)
        fn = (~pred & y[:, None]).sum(axis=0)
        f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        thresholds[j] = grid_arr[best[np.argmin(np.abs(grid_arr[best] - default))]]
    return thresholds


# -- the estimator -----------------------------------------------------------------------------------
class ThemeClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label classifier of texts into codebook themes.

    Parameters
    ----------
    classes : sequence of str or None
        Label order when ``y`` is given as lists of codes (use the codebook's codes so that columns
        follow the codebook). ``None``: sorted labels seen in ``y``.
    C : float
        Inverse regularisation of each per-theme logistic regression.
    class_weight : "balanced" or None
        Each theme is rare among answers; balancing stops the model from predicting "never".
    word_ngram_range, char_ngram_range : tuple of int
        N-gram ranges of the word and ``char_wb`` TF-IDF; ``char_ngram_range=None`` drops the
        character features (faster, weaker on misspellings).
    max_features : int or None
        Vocabulary cap per vectoriser (bounds memory and prediction time).
    cue_weight : float
        Scale of the theme cue-vocabulary features (:class:`ThemeCues`); 0 leaves them out. At 0.5
        (chosen by cross-validation on the training split) the cues back the TF-IDF up rather than
        outvote it.
    threshold_cv : int
        Folds of the cross-validation that chooses per-theme thresholds; 0 or 1 keeps 0.5.
    random_state : int
        Seed of the threshold cross-validation split.

    ``y`` may be lists of labels per text, a 2-D indicator matrix, or a 1-D array of single labels
    (then the classifier behaves as a one-vs-rest multiclass classifier and predicts one label each).
    """

    def __init__(self, classes: Sequence[str] | None = None, C: float = 8.0,
                 class_weight: str | None = "balanced", word_ngram_range: tuple[int, int] = (1, 2),
                 char_ngram_range: tuple[int, int] | None = (3, 5), max_features: int | None = 60000,
                 cue_weight: float = 0.5, threshold_cv: int = 5, random_state: int = 0) -> None:
        self.classes = classes
        self.C = C
        self.class_weight = class_weight
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.max_features = max_features
        self.cue_weight = cue_weight
        self.threshold_cv = threshold_cv
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        # 2-D input is accepted (cells joined per row) so the common estimator checks can run.
        tags.input_tags.two_d_array = True
        tags.input_tags.allow_nan = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.classifier_tags.multi_label = True
        return tags

    def _make_pipeline(self) -> Pipeline:
        base = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=2000, solver="liblinear")
        return Pipeline([
            ("features", text_features(self.word_ngram_range, self.char_ngram_range, self.max_features,
                                      self.cue_weight)),
            ("clf", OneVsRestClassifier(base)),
        ])

    def _encode_y(self, y: Any) -> np.ndarray:
        if _is_label_lists(y):
            mlb = MultiLabelBinarizer(classes=list(self.classes) if self.classes is not None else None)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                Y = mlb.fit_transform(y)
            if caught:
                # Labels outside ``classes`` are a labelling mistake, not noise to drop silently.
                raise ValueError(f"labels outside classes: {caught[0].message}")
            self.classes_ = np.asarray(mlb.classes_, dtype=object)
            self.multilabel_ = True
            return Y.astype(np.int8)
        y_arr = np.asarray(y)
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is ravelled.",
                          DataConversionWarning, stacklevel=3)
            y_arr = y_arr.ravel()
        if y_arr.ndim == 2:
            kind = type_of_target(y_arr)
            if kind not in ("multilabel-indicator",):
                raise ValueError(f"2-D y must be a 0/1 indicator matrix, got target type {kind!r}")
            n = y_arr.shape[1]
            self.classes_ = (np.asarray(self.classes, dtype=object) if self.classes is not None
                             else np.arange(n))
            if len(self.classes_) != n:
                raise ValueError("len(classes) does not match the columns of y")
            self.multilabel_ = True
            return y_arr.astype(np.int8)
        if y_arr.ndim != 1:
            raise ValueError("y must be label lists, an indicator matrix or a 1-D label array")
        kind = type_of_target(y_arr)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: {kind!r}; expected classes, not continuous values")
        classes, inverse = np.unique(y_arr, return_inverse=True)
        if len(classes) < 2:
            raise ValueError("Classifier can't train when only one class is present.")
        self.classes_ = classes
        self.multilabel_ = False
        Y = np.zeros((len(y_arr), len(classes)), dtype=np.int8)
        Y[np.arange(len(y_arr)), inverse] = 1
        return Y

    def fit(self, X: Any, y: Any) -> ThemeClassifier:
        """Fit on texts ``X`` and labels ``y``; returns ``self``."""
        if y is None:
            raise ValueError("ThemeClassifier requires y to be passed, but the target y is None")
        texts = validate_texts(X, self, reset=True)
        Y = self._encode_y(y)
        if len(texts) != Y.shape[0]:
            raise ValueError(f"X has {len(texts)} texts but y has {Y.shape[0]} rows")
        # Columns with a single value (a theme nobody, or everybody, has) cannot train a regression;
        # they get a constant score instead.
        prevalence = Y.mean(axis=0)
        self.constant_columns_ = np.flatnonzero((prevalence == 0) | (prevalence == 1))
        trainable = np.setdiff1d(np.arange(Y.shape[1]), self.constant_columns_)
        self.trainable_columns_ = trainable
        pipe = self._make_pipeline()
        thresholds = np.full(Y.shape[1], 0.5)
        Yt = Y[:, trainable]
        if self.multilabel_ and self.threshold_cv and self.threshold_cv > 1 and len(trainable):
            n_splits = int(min(self.threshold_cv, len(texts)))
            positives = Yt.sum(axis=0).min()
            if n_splits >= 2 and positives >= n_splits:
                cv = KFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
                # Out-of-fold scores: thresholds chosen on answers the fold's model never saw.
                oof = cross_val_predict(clone(pipe), texts, Yt, cv=cv, method="predict_proba")
                thresholds[trainable] = tune_thresholds(np.asarray(oof), Yt)
        self.thresholds_ = thresholds
        self.pipeline_ = pipe.fit(texts, Yt) if len(trainable) else None
        self.constant_values_ = prevalence[self.constant_columns_].astype(float)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each theme per text, shape (n_texts, n_themes); rows need not sum to 1."""
        check_is_fitted(self, "thresholds_")
        texts = validate_texts(X, self)
        out = np.zeros((len(texts), len(self.classes_)), dtype=float)
        if self.pipeline_ is not None:
            proba = self.pipeline_.predict_proba(texts)
            out[:, self.trainable_columns_] = np.asarray(proba).reshape(len(texts), -1)
        out[:, self.constant_columns_] = self.constant_values_
        if not self.multilabel_:
            # Single-label use: normalise one-vs-rest scores into a distribution.
            totals = out.sum(axis=1, keepdims=True)
            out = np.divide(out, totals, out=np.full_like(out, 1 / out.shape[1]), where=totals > 0)
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """Score minus threshold per theme (positive means the theme is predicted)."""
        scores = self.predict_proba(X) - self.thresholds_
        if not self.multilabel_ and len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X: Any) -> np.ndarray:
        """0/1 indicator matrix of themes (multi-label fit) or one label per text (1-D fit)."""
        proba = self.predict_proba(X)
        if not self.multilabel_:
            return self.classes_[np.argmax(proba, axis=1)]
        return (proba >= self.thresholds_).astype(np.int64)

    def predict_labels(self, X: Any) -> list[list[str]]:
        """Predicted theme codes per text, in codebook order."""
        pred = self.predict(X)
        if not self.multilabel_:
            return [[str(label)] for label in pred]
        return [[str(self.classes_[j]) for j in np.flatnonzero(row)] for row in pred]


# -- labelled data --------------------------------------------------------------------------------------
def load_labelled(name: str = TRAIN_FILE) -> list[dict[str, Any]]:
    """Rows of a packaged labelled file (``themes-train.jsonl`` or ``themes-test.jsonl``)."""
    text = resources.files("analysis.data").joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def data_sha256(name: str = TRAIN_FILE) -> str:
    """sha256 of a packaged labelled file's bytes (recorded in model metadata)."""
    return hashlib.sha256(resources.files("analysis.data").joinpath(name).read_bytes()).hexdigest()


def split_of(text: str) -> str:
    """The file a newly written labelled answer goes to: ``"test"`` or ``"train"``.

    The rule looks at the text alone: the first 16 bits of its sha256, as a fraction of their range,
    below :data:`TEST_SHARE` put it in the held-out file. Neither a label nor a model's opinion of the
    answer can move it, so hard answers cannot be steered into training, and every batch of new answers
    grows the test file by about the same share. Rows before a0892 (:data:`SPLIT_RULE_FROM`) keep the split
    they were written with: a0001-a0817 were held out by the same hash, lowest first within each
    combination of themes; a0818-a0891 were all put in training.
    """
    bits = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:2], "big")
    return "test" if bits < TEST_SHARE * 65536 else "train"


def add_labelled(rows: Iterable[dict[str, Any]], codebook: Codebook | None = None,
                 directory: Path | None = None) -> dict[str, int]:
    """Append new labelled answers (``text``, ``themes``, ``sentiment``) to the corpus files.

    Each row gets the next free ``aNNNN`` id and goes to the file :func:`split_of` names. Unknown theme
    codes or sentiments, empty texts and texts already in the corpus (ignoring case) are refused before
    anything is written. Returns how many rows went to each file; models must be retrained afterwards
    (``python -m analysis.pipeline``).
    """
    codebook = codebook or load_codebook()
    directory = directory or DATA_DIR
    files = {"train": directory / TRAIN_FILE, "test": directory / TEST_FILE}
    existing = [json.loads(line) for f in files.values()
                for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    seen = {r["text"].lower() for r in existing}
    next_id = 1 + max((int(r["id"][1:]) for r in existing), default=0)
    out: dict[str, list[str]] = {"train": [], "test": []}
    for row in rows:
        text = str(row["text"]).strip()
        themes = sorted(set(row["themes"]))
        if not text:
            raise ValueError("empty text")
        if text.lower() in seen:
            raise ValueError(f"already in the corpus: {text!r}")
        if set(themes) - set(codebook.codes):
            raise ValueError(f"unknown themes {sorted(set(themes) - set(codebook.codes))} in {text!r}")
        if row["sentiment"] not in ("negative", "neutral", "positive"):
            raise ValueError(f"unknown sentiment {row['sentiment']!r} in {text!r}")
        seen.add(text.lower())
        record = {"id": f"a{next_id:04d}", "text": text, "themes": themes, "sentiment": row["sentiment"]}
        next_id += 1
        out[split_of(text)].append(json.dumps(record, ensure_ascii=False))
    for split, lines in out.items():
        if lines:
            with files[split].open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
    return {split: len(lines) for split, lines in out.items()}


# -- the versioned model file -----------------------------------------------------------------------------
FORMAT = 1


@dataclass
class ThemeModel:
    """A trained :class:`ThemeClassifier` with the facts needed to trust it."""

    classifier: ThemeClassifier
    codebook_version: int
    codebook_fingerprint: str
    training_sha256: str
    n_training: int
    sklearn_version: str
    format: int = FORMAT

    @property
    def model_version(self) -> str:
        """Short identifier shown next to every result, e.g. ``themes-cb1-1a2b3c4d``."""
        return f"themes-cb{self.codebook_version}-{self.training_sha256[:8]}"

    @property
    def codes(self) -> list[str]:
        """Theme codes in column order."""
        return [str(c) for c in self.classifier.classes_]

    def metadata(self) -> dict[str, Any]:
        """Everything but the estimator, as plain data."""
        return {
            "model_version": self.model_version,
            "codebook_version": self.codebook_version,
            "codebook_fingerprint": self.codebook_fingerprint,
            "training_sha256": self.training_sha256,
            "n_training": self.n_training,
            "sklearn_version": self.sklearn_version,
            "format": self.format,
            "codes": self.codes,
        }


def model_path(codebook_version: int, directory: Path | None = None) -> Path:
    """Where the theme model for a codebook version lives."""
    return (directory or MODEL_DIR) / f"themes-codebook-v{codebook_version}.joblib"


def train(codebook: Codebook | None = None, rows: Iterable[dict[str, Any]] | None = None,
          save_to: Path | None = None, **params: Any) -> ThemeModel:
    """Train the theme model deterministically on the packaged training split.

    Only ``themes-train.jsonl`` is read; the test split stays unseen. With ``save_to`` (a directory)
    the model is written to :func:`model_path` there.
    """
    codebook = codebook or load_codebook()
    if rows is None:
        rows = load_labelled(TRAIN_FILE)
        sha = data_sha256(TRAIN_FILE)
    else:
        rows = list(rows)
        sha = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
    rows = list(rows)
    unknown = sorted({t for r in rows for t in r["themes"]} - set(codebook.codes))
    if unknown:
        raise ModelVersionError(f"training labels not in codebook v{codebook.version}: {unknown}")
    clf = ThemeClassifier(classes=codebook.codes, **params)
    clf.fit([r["text"] for r in rows], [list(r["themes"]) for r in rows])
    model = ThemeModel(
        classifier=clf,
        codebook_version=codebook.version,
        codebook_fingerprint=codebook.fingerprint,
        training_sha256=sha,
        n_training=len(rows),
        sklearn_version=sklearn.__version__,
    )
    if save_to is not None:
        save_model(model, model_path(codebook.version, Path(save_to)))
    return model


def save_model(model: ThemeModel, path: Path) -> Path:
    """Write the model file (metadata beside the estimator so it can be checked before use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"metadata": model.metadata(), "model": model}, path, compress=3)
    return path


def load_model(codebook: Codebook | None = None, path: Path | None = None) -> ThemeModel:
    """Load the packaged theme model for ``codebook`` (default: codebook v1).

    Raises :class:`ModelVersionError` when the file was trained on another codebook version or
    another set of codes, and ``FileNotFoundError`` when no model was shipped: production code must
    not train on the fly.
    """
    codebook = codebook or load_codebook()
    path = path or model_path(codebook.version)
    if not path.exists():
        raise FileNotFoundError(f"no theme model for codebook v{codebook.version} at {path}")
    # joblib files are pickles: only files shipped in the package (or written by train()) are loaded.
    payload = joblib.load(path)
    meta = payload.get("metadata", {}) if isinstance(payload, dict) else {}
    if meta.get("format") != FORMAT:
        raise ModelVersionError(f"{path.name}: model file format {meta.get('format')!r} != {FORMAT}")
    if meta.get("codebook_version") != codebook.version:
        raise ModelVersionError(
            f"{path.name} was trained on codebook v{meta.get('codebook_version')}, "
            f"not v{codebook.version}; retrain it with analysis.themes.train()"
        )
    if meta.get("codebook_fingerprint") != codebook.fingerprint:
        raise ModelVersionError(f"{path.name}: codebook v{codebook.version} codes differ from the model's")
    model: ThemeModel = payload["model"]
    if meta.get("sklearn_version") != sklearn.__version__:
        warnings.warn(
            f"{path.name} was trained with scikit-learn {meta.get('sklearn_version')}, "
            f"running {sklearn.__version__}; retrain if results look wrong",
            stacklevel=2,
        )
    return model
