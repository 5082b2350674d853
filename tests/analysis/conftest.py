"""Shared, session-scoped fixtures for the free-text mining tests: small models trained once."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.codebook import Codebook, load_codebook
from analysis.sentiment import SentimentModel
from analysis.sentiment import train as train_sentiment
from analysis.themes import TEST_FILE, TRAIN_FILE, ThemeModel, load_labelled
from analysis.themes import train as train_themes

# Small but real: the fast settings only trade a little accuracy for test speed.
FAST_THEMES: dict[str, Any] = {"threshold_cv": 2, "char_ngram_range": (3, 4), "max_features": 5000}


@pytest.fixture(scope="session")
def codebook() -> Codebook:
    return load_codebook()


@pytest.fixture(scope="session")
def train_rows() -> list[dict[str, Any]]:
    return load_labelled(TRAIN_FILE)


@pytest.fixture(scope="session")
def test_rows() -> list[dict[str, Any]]:
    return load_labelled(TEST_FILE)


@pytest.fixture(scope="session")
def small_theme_model(codebook: Codebook) -> ThemeModel:
    return train_themes(codebook, **FAST_THEMES)


@pytest.fixture(scope="session")
def small_sentiment_model() -> SentimentModel:
    return train_sentiment(calibration_cv=2)
