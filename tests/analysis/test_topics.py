"""Emerging topics find what the codebook misses."""

from __future__ import annotations

import random

import numpy as np
import pytest

from analysis.topics import EmergingTopics, find_emerging_topics, poorly_explained


def _corpus(seed: int = 3) -> tuple[list[str], np.ndarray, set[int]]:
    rng = random.Random(seed)
    planted_words = ["parking", "fine", "clamped", "car", "park", "ticket"]
    other = ["weather", "garden", "holiday", "football", "shopping", "cooking", "music", "train",
             "painting", "walking", "reading", "cinema", "dog", "cat", "school", "library"]
    texts, planted = [], set()
    for i in range(300):
        if i % 6 == 0:
            words = rng.sample(planted_words, 4) + rng.sample(other, 2)
            planted.add(i)
        else:
            words = rng.sample(other, 6)
        rng.shuffle(words)
        texts.append("the " + " and ".join(words))
    scores = np.full((len(texts), 3), 0.1)
    explained = rng.sample(range(len(texts)), 60)
    scores[explained, 1] = 0.9  # pretend the codebook covers these
    return texts, scores, planted


def test_planted_topic_is_found() -> None:
    texts, scores, planted = _corpus()
    topics = find_emerging_topics(texts, scores, threshold=0.5, n_topics=4, min_df=2)
    assert topics
    best = max(topics, key=lambda t: len(set(t.terms[:5]) & {"parking", "clamped", "ticket", "car", "park"}))
    assert len(set(best.terms[:5]) & {"parking", "clamped", "ticket", "car", "park"}) >= 3
    assert best.representatives and set(best.representatives) <= planted
    unexplained = set(poorly_explained(scores, 0.5).tolist())
    assert set(best.representatives) <= unexplained


def test_nothing_unexplained_means_no_topics() -> None:
    texts, scores, _ = _corpus()
    assert find_emerging_topics(texts, np.ones_like(scores), threshold=0.5) == []


def test_short_answers_are_left_out() -> None:
    texts = ["n/a", "no", "none"] * 10
    assert find_emerging_topics(texts, np.zeros((30, 2))) == []


def test_estimator_transform_shape() -> None:
    texts, _, _ = _corpus()
    model = EmergingTopics(n_topics=3).fit(texts)
    assert model.transform(texts[:5]).shape == (5, 3)
    assert len(model.topics_) == 3
    with pytest.raises(ValueError):
        find_emerging_topics(texts, np.zeros((3, 2)))
