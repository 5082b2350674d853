"""Safeguarding detector: each category caught (misspellings too), hard negatives, the shipped model."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import SkipTestWarning
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks as ec
from sklearn.utils.estimator_checks import parametrize_with_checks

from analysis.redaction import Redactor
from analysis.safeguarding import (
    CATEGORIES,
    MODEL_FILE,
    TRAIN_FILE,
    SafeguardingDetector,
    evaluation_report,
    load_labelled,
    load_metadata,
    rule_matches,
    train,
    training_data_sha256,
)


@pytest.fixture(scope="module")
def model() -> SafeguardingDetector:
    return SafeguardingDetector.load()


def _rule_categories(text: str) -> set[str]:
    return {h.category for h in rule_matches(text) if not h.suppressed}


# Phrasings written for these tests (not in the training or test files), misspellings included.
RULE_CASES = [
    ("danger", "He's outside right now and I'm on my own."),
    ("danger", "he said hes going to kill me"),
    ("danger", "I'm not safe at home tonight."),
    ("danger", "he's threatning to kil me if I give evidence"),
    ("danger", "My ex has found out where we live and keeps driving past."),
    ("danger", "He choked me on Tuesday."),
    ("danger", "He broke the order again and came round."),
    ("self_harm", "I want to end it."),
    ("self_harm", "I don't want to be here anymore."),
    ("self_harm", "dont want to be here any more"),
    ("self_harm", "I've been cutting myself."),
    ("self_harm", "im having sucidal thoughts"),
    ("self_harm", "i keep thinkin about killin myself"),
    ("self_harm", "everyone would be better off without me"),
    ("self_harm", "I've got pills saved up."),
    ("child_risk", "He hits the kids."),
    ("child_risk", "My daughter is still seeing him and he hurts her."),
    ("child_risk", "He smacks my little boy when I'm at work."),
    ("child_risk", "He does it in front of the children."),
    ("child_risk", "A man keeps messaging my 13 year old."),
    ("child_risk", "He's taken the kids and won't bring them back."),
]


@pytest.mark.parametrize(("category", "text"), RULE_CASES)
def test_rules_catch_each_category(category: str, text: str) -> None:
    assert category in _rule_categories(text)


@pytest.mark.parametrize(("category", "text"), RULE_CASES)
def test_detector_alerts_with_the_right_category(
    model: SafeguardingDetector, category: str, text: str
) -> None:
    assert model.predict([text]).tolist() == [True]
    assert category in model.predict_category([text])[0]


NOT_FOR_RULES = [
    "I felt safe after they fitted the locks.",
    "I'm not suicidal, I just want someone to ring me back.",
    "I have never self harmed.",
    "The counsellor helped me stop thinking about ending it years ago, I'm in a good place now.",
    "This waiting is killing me.",
    "I was dying for a cup of tea after the interview.",
    "I wanted to die of embarrassment in court.",
    "The kids are doing really well at school.",
    "Nobody told me when the trial was.",
]


@pytest.mark.parametrize("text", NOT_FOR_RULES)
def test_rules_stay_quiet_on_hard_negatives(text: str) -> None:
    assert _rule_categories(text) == set()


def test_negation_is_not_applied_when_the_matter_is_current_again() -> None:
    text = "I used to self harm years ago and now I've started again."
    assert "self_harm" in _rule_categories(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # The offender being in prison makes a threat history, not a wish to die.
        ("He's in prison now but I want to end it all.", "self_harm"),
        # A negation that is not about the phrase itself does not silence it.
        ("I'm not ok, I want to end it.", "self_harm"),
        ("He moved away but the kids still see him and he hits them.", "child_risk"),
    ],
)
def test_suppression_is_narrow(text: str, category: str) -> None:
    assert category in _rule_categories(text)


def test_offender_out_of_reach_silences_only_danger_phrases() -> None:
    assert _rule_categories("He's in prison so he can't threaten to kill me any more.") == set()


def test_suppressed_hits_are_reported_as_such() -> None:
    hits = rule_matches("I'm not suicidal.")
    assert hits and all(h.suppressed for h in hits)


def test_predict_shapes_and_types(model: SafeguardingDetector) -> None:
    texts = ["I want to end it all", "The officer was kind", "He hits the kids and says he'll kill me"]
    alerts = model.predict(texts)
    assert alerts.dtype == bool and alerts.shape == (3,)
    assert alerts.tolist() == [True, False, True]
    cats = model.predict_category(texts)
    assert cats[0] == ["self_harm"] and cats[1] == []
    assert set(cats[2]) >= {"danger", "child_risk"}
    proba = model.predict_proba(texts)
    assert proba.shape == (3, len(CATEGORIES)) and np.all((proba >= 0) & (proba <= 1))
    assert model.predict([]).shape == (0,)


def test_shipped_model_metadata_matches_training_data() -> None:
    meta = load_metadata()
    assert meta["model_version"] == "safeguarding-v1"
    assert meta["training_data_sha256"] == training_data_sha256(TRAIN_FILE)
    assert meta["categories"] == list(CATEGORIES)
    assert meta["n_training_texts"] == len(load_labelled(TRAIN_FILE)[0])


def test_train_rebuilds_the_shipped_model(tmp_path: Path, model: SafeguardingDetector) -> None:
    rebuilt_path = tmp_path / "rebuilt.joblib"
    rebuilt = train(model_path=rebuilt_path)
    texts, _ = load_labelled(TRAIN_FILE)
    np.testing.assert_allclose(rebuilt.predict_proba(texts), model.predict_proba(texts))
    assert load_metadata(rebuilt_path) == load_metadata(MODEL_FILE)


def test_test_set_is_disjoint_from_training_set() -> None:
    train_texts = {t.lower() for t in load_labelled(TRAIN_FILE)[0]}
    test_texts = {t.lower() for t in load_labelled(Path(TRAIN_FILE).with_name("safeguarding_test.jsonl"))[0]}
    assert not train_texts & test_texts


def test_held_out_evaluation(model: SafeguardingDetector) -> None:
    report = evaluation_report(model)
    assert report["n_positive"] >= 60 and report["n_negative"] >= 100
    assert report["recall"] == 1.0, report["missed"]
    assert all(r == 1.0 for r in report["per_category_recall"].values())
    assert report["precision"] > 0.7


def test_fit_accepts_single_labels_and_rejects_unknown_ones() -> None:
    texts = ["he hits the kids", "i want to die", "he is outside", "all fine", "kind staff", "no update"]
    det = SafeguardingDetector().fit(texts, ["child_risk", "self_harm", "danger", "none", "none", "none"])
    assert det.categories_ == CATEGORIES
    assert set(det.classifiers_) == set(CATEGORIES)
    with pytest.raises(ValueError, match="unknown safeguarding label"):
        SafeguardingDetector().fit(texts, ["bad"] * 6)
    with pytest.raises(ValueError, match="labels"):
        SafeguardingDetector().fit(texts, ["none"])


def test_estimator_rules_and_pipeline() -> None:
    texts, labels = load_labelled(TRAIN_FILE)
    det = SafeguardingDetector(threshold=0.5)
    assert det.fit(texts, labels) is det
    assert clone(det).get_params() == det.get_params()
    # Safeguarding on redacted text still works: the cues are in the words, not the identifiers.
    pipe = Pipeline([("redact", Redactor()), ("detect", SafeguardingDetector())]).fit(texts, labels)
    out = pipe.predict(["My ex Dave is outside my house at 14 Elm Road right now", "Thanks to PC Smith"])
    assert out.tolist() == [True, False]


with warnings.catch_warnings():
    # All generic checks need 2-D numeric input; the string-input tags make sklearn skip them (expected).
    warnings.simplefilter("ignore", SkipTestWarning)
    _SKLEARN_CHECKS = parametrize_with_checks([SafeguardingDetector()])


@_SKLEARN_CHECKS
def test_sklearn_compatible(estimator: SafeguardingDetector, check: object) -> None:
    check(estimator)  # type: ignore[operator]


@pytest.mark.parametrize(
    "check",
    [
        ec.check_no_attributes_set_in_init,
        ec.check_estimator_repr,
        ec.check_get_params_invariance,
        ec.check_set_params,
        ec.check_parameters_default_constructible,
        ec.check_valid_tag_types,
        ec.check_estimator_tags_renamed,
        ec.check_do_not_raise_errors_in_init_or_set_params,
    ],
)
def test_sklearn_api_checks_that_need_no_data(check: object) -> None:
    check("SafeguardingDetector", SafeguardingDetector())  # type: ignore[operator]
