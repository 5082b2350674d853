"""TextAnalyser: the packaged models end to end."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.pipeline import TextAnalyser


@pytest.fixture(scope="module")
def analyser() -> TextAnalyser:
    return TextAnalyser.load(n_jobs=1)


def test_output_shape(analyser: TextAnalyser) -> None:
    texts = ["The police never rang me back, my number is 07700 900123.",
             "My worker was brilliant and helped me get new locks fitted.",
             "n/a"]
    out = analyser.analyse(texts)
    assert len(out) == 3
    for item in out:
        assert set(item) == {"redacted", "sentiment", "sentiment_scores", "themes", "theme_scores",
                             "safeguarding", "model_version"}
        assert item["sentiment"] in {"negative", "neutral", "positive"}
        assert set(item["sentiment_scores"]) == {"negative", "neutral", "positive"}
        assert sum(item["sentiment_scores"].values()) == pytest.approx(1, abs=1e-3)
        assert list(item["theme_scores"]) == analyser.theme_codes
        assert all(item["theme_scores"][t] >= 0 for t in item["themes"])
        assert isinstance(item["safeguarding"], bool)
        assert item["model_version"] == analyser.model_version
    assert "07700 900123" not in out[0]["redacted"] and "[PHONE]" in out[0]["redacted"]
    assert "police_response" in out[0]["themes"] and out[0]["sentiment"] == "negative"
    assert out[2]["themes"] == []


def test_safeguarding_is_raised(analyser: TextAnalyser) -> None:
    out = analyser.analyse(["He said he will kill me when he gets out and I am scared", "All fine thanks"])
    assert out[0]["safeguarding"] is True
    assert out[1]["safeguarding"] is False


def test_duplicates_and_empty_batch(analyser: TextAnalyser) -> None:
    assert analyser.analyse([]) == []
    out = analyser.analyse(["no", "The court case was dropped", "no"])
    assert out[0] == out[2]
    with pytest.raises(ValueError):
        analyser.analyse("one string")  # type: ignore[arg-type]


def test_parallel_path_gives_the_same_results(analyser: TextAnalyser) -> None:
    texts = [f"answer {i}: I waited {i} weeks for counselling and nobody kept me informed" for i in range(40)]
    serial = analyser.analyse_batch(texts)
    parallel = TextAnalyser(analyser.themes, analyser.sentiment, analyser.redactor, analyser.safeguarding,
                            n_jobs=2, parallel_min=10)
    par = parallel.analyse_batch(texts)
    assert par.redacted == serial.redacted
    np.testing.assert_allclose(par.theme_proba, serial.theme_proba)
    np.testing.assert_allclose(par.sentiment_proba, serial.sentiment_proba)
    np.testing.assert_array_equal(par.safeguarding, serial.safeguarding)
