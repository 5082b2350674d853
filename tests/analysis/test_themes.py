"""Theme classifier: the labelled corpus, behaviour, Pipeline use, and the versioned model file."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from analysis.codebook import Codebook, Theme
from analysis.themes import (
    SPLIT_RULE_FROM,
    ModelVersionError,
    ThemeClassifier,
    ThemeModel,
    add_labelled,
    cue_counts,
    load_model,
    model_path,
    save_model,
    split_of,
    train,
    tune_thresholds,
)


# -- the corpus --------------------------------------------------------------------------------------
def test_corpus_schema_and_codes(train_rows: list[dict[str, Any]], test_rows: list[dict[str, Any]],
                                 codebook: Codebook) -> None:
    for row in train_rows + test_rows:
        assert set(row) == {"id", "text", "themes", "sentiment"}
        assert row["text"].strip()
        assert set(row["themes"]) <= set(codebook.codes)
        assert row["sentiment"] in {"negative", "neutral", "positive"}


def test_corpus_size_and_split(train_rows: list[dict[str, Any]], test_rows: list[dict[str, Any]],
                               codebook: Codebook) -> None:
    counts = Counter(t for r in train_rows for t in r["themes"])
    assert min(counts[c] for c in codebook.codes) >= 40  # 40 per theme in training alone
    everything = train_rows + test_rows
    assert sum(1 for r in everything if not r["themes"]) >= 80
    # The held-out split shares no answer with training.
    assert not {r["id"] for r in train_rows} & {r["id"] for r in test_rows}
    assert not {r["text"].lower() for r in train_rows} & {r["text"].lower() for r in test_rows}
    assert all(Counter(t for r in test_rows for t in r["themes"])[c] >= 10 for c in codebook.codes)


def test_added_rows_follow_the_split_rule(train_rows: list[dict[str, Any]],
                                         test_rows: list[dict[str, Any]]) -> None:
    added = [(r, "train") for r in train_rows if int(r["id"][1:]) >= SPLIT_RULE_FROM]
    added += [(r, "test") for r in test_rows if int(r["id"][1:]) >= SPLIT_RULE_FROM]
    assert len(added) >= 300 and sum(1 for _, split in added if split == "test") >= 60
    assert all(split_of(r["text"]) == split for r, split in added)


def test_split_rule_is_a_stable_share() -> None:
    texts = [f"answer number {i}" for i in range(4000)]
    share = np.mean([split_of(t) == "test" for t in texts])
    assert 0.19 < share < 0.25
    assert [split_of(t) for t in texts[:50]] == [split_of(t) for t in texts[:50]]


def test_add_labelled_routes_numbers_and_refuses(tmp_path: Path, codebook: Codebook) -> None:
    (tmp_path / "themes-train.jsonl").write_text(
        '{"id": "a0007", "text": "Old answer", "themes": [], "sentiment": "neutral"}\n', encoding="utf-8")
    (tmp_path / "themes-test.jsonl").write_text("", encoding="utf-8")
    rows = [{"text": f"The wait was {i} weeks", "themes": ["waiting_times"], "sentiment": "negative"}
            for i in range(40)]
    counts = add_labelled(rows, codebook, tmp_path)
    assert counts["train"] + counts["test"] == 40 and counts["test"] > 0
    written = {}
    for split in ("train", "test"):
        for line in (tmp_path / f"themes-{split}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            written[row["id"]] = row
            assert row["id"] == "a0007" or split_of(row["text"]) == split
    assert sorted(written) == [f"a{i:04d}" for i in range(7, 48)]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for bad in ({"text": "old ANSWER", "themes": [], "sentiment": "neutral"},
                {"text": "New", "themes": ["parking"], "sentiment": "neutral"},
                {"text": "New", "themes": [], "sentiment": "angry"}):
        with pytest.raises(ValueError):
            add_labelled([{"text": "A fine new answer", "themes": [], "sentiment": "neutral"}, bad],
                         codebook, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # all or nothing


# -- pieces ------------------------------------------------------------------------------------------------
def test_tune_thresholds_finds_the_separating_cut() -> None:
    scores = np.array([[0.1, 0.9], [0.3, 0.8], [0.35, 0.2], [0.6, 0.1]])
    Y = np.array([[0, 1], [0, 1], [1, 0], [1, 0]])
    th = tune_thresholds(scores, Y)
    assert 0.3 < th[0] <= 0.35
    assert 0.2 < th[1] <= 0.8
    assert tune_thresholds(scores, np.zeros_like(Y))[0] == 0.5  # no positives: keep the default


def test_cues_see_misspellings_and_phrases() -> None:
    from analysis.themes import _CUE_CODES

    row = dict(zip(_CUE_CODES, cue_counts(["need counselin, on the waitin list, no further action"])[0],
                   strict=True))
    assert row["mental_health"] >= 1 and row["waiting_times"] >= 1 and row["justice_process"] >= 1
    assert row["housing"] == 0


def test_accepts_label_lists_indicator_matrix_and_tables() -> None:
    texts = ["police never came", "court date moved", "police were rude", "trial was delayed"] * 3
    labels = [["police_response"], ["justice_process"]] * 6
    clf = ThemeClassifier(threshold_cv=0, char_ngram_range=None).fit(texts, labels)
    assert list(clf.classes_) == ["justice_process", "police_response"]
    assert clf.predict_labels(["the police did nothing"]) == [["police_response"]]
    Y = np.array([[0, 1], [1, 0]] * 6)
    ind = ThemeClassifier(threshold_cv=0, char_ngram_range=None).fit(texts, Y)
    assert ind.predict(["court trial"]).tolist() == [[1, 0]]
    table = np.array([[t, "extra"] for t in texts], dtype=object)
    tab = ThemeClassifier(threshold_cv=0, char_ngram_range=None).fit(table, labels)
    with pytest.raises(ValueError, match="Reshape"):
        tab.predict(texts)


def test_unknown_labels_are_refused() -> None:
    with pytest.raises(ValueError):
        ThemeClassifier(classes=["housing"], threshold_cv=0).fit(["a b", "c d"],
                                                                 [["housing"], ["typo_theme"]])


def test_works_inside_a_pipeline(train_rows: list[dict[str, Any]], codebook: Codebook) -> None:
    from analysis.redaction import Redactor

    texts = [r["text"] for r in train_rows]
    labels = [r["themes"] for r in train_rows]
    themes = ThemeClassifier(classes=codebook.codes, threshold_cv=0, char_ngram_range=None)
    pipe = Pipeline([("redact", Redactor()), ("themes", themes)])
    pipe.fit(texts, labels)
    pred = pipe.predict(["Call me on 07700 900123, I waited 8 months on the waiting list for counselling"])
    got = {codebook.codes[j] for j in np.flatnonzero(pred[0])}
    assert "waiting_times" in got


# -- behaviour of the trained model --------------------------------------------------------------------------
def test_learned_behaviour(small_theme_model: ThemeModel) -> None:
    clf = small_theme_model.classifier
    labels = clf.predict_labels([
        "The officers were wonderful and came straight away",
        "I have been on the waiting list for therapy for a year",
        "We had to go into a refuge and now we are homeless",
        "n/a",
    ])
    assert "police_response" in labels[0]
    assert "waiting_times" in labels[1]
    assert "housing" in labels[2]
    assert labels[3] == []
    assert clf.predict_proba(["anything"]).shape == (1, 15)


def test_reasonable_on_held_out(small_theme_model: ThemeModel, test_rows: list[dict[str, Any]],
                                codebook: Codebook) -> None:
    from analysis.evaluate import evaluate_themes

    result = evaluate_themes(small_theme_model, test_rows, codebook)
    # The fast test settings score below the shipped model; this guards against breakage only.
    assert result["micro_f1"] > 0.65


# -- the versioned model file ----------------------------------------------------------------------------
def test_metadata(small_theme_model: ThemeModel, codebook: Codebook) -> None:
    meta = small_theme_model.metadata()
    assert meta["codebook_version"] == 1
    assert meta["codebook_fingerprint"] == codebook.fingerprint
    assert len(meta["training_sha256"]) == 64
    assert meta["codes"] == list(codebook.codes)
    assert small_theme_model.model_version.startswith("themes-cb1-")


def test_round_trip_and_version_refusal(tmp_path: Path, small_theme_model: ThemeModel,
                                        codebook: Codebook) -> None:
    path = save_model(small_theme_model, model_path(1, tmp_path))
    loaded = load_model(codebook, path)
    texts = ["I never heard back about the court case"]
    np.testing.assert_array_equal(loaded.classifier.predict_proba(texts),
                                  small_theme_model.classifier.predict_proba(texts))
    renamed = codebook.rename("housing", "A safe home")
    with pytest.raises(ModelVersionError, match="codebook v1"):
        load_model(renamed, path)
    with pytest.raises(FileNotFoundError):
        load_model(renamed, tmp_path / "nothing.joblib")


def test_shipped_model_loads_and_matches_training_data(codebook: Codebook) -> None:
    from analysis.themes import data_sha256

    model = load_model(codebook)
    assert model.training_sha256 == data_sha256()  # retrain after editing the corpus
    assert model.codes == list(codebook.codes)


def test_training_is_deterministic(codebook: Codebook, train_rows: list[dict[str, Any]]) -> None:
    rows = train_rows[:200]
    a = train(codebook, rows, threshold_cv=2, char_ngram_range=None)
    b = train(codebook, rows, threshold_cv=2, char_ngram_range=None)
    texts = [r["text"] for r in train_rows[200:260]]
    np.testing.assert_array_equal(a.classifier.thresholds_, b.classifier.thresholds_)
    np.testing.assert_array_equal(a.classifier.predict_proba(texts), b.classifier.predict_proba(texts))
    assert a.training_sha256 == b.training_sha256


def test_training_refuses_labels_outside_the_codebook(codebook: Codebook,
                                                      train_rows: list[dict[str, Any]]) -> None:
    merged = codebook.merge(["waiting_times", "support_ended"], Theme("capacity", "gap", "Capacity", ""))
    with pytest.raises(ModelVersionError):
        train(merged, train_rows[:50], threshold_cv=0)
