"""One call from raw free-text answers to what the platform stores about them.

:class:`TextAnalyser` runs, per answer: redaction (``analysis.redaction.Redactor``), sentiment and
themes on the *redacted* text (so nothing learned or shown depends on names, phones, addresses), and
the safeguarding detector on the *original* text (a redacted name or address must never hide a
disclosure of danger). Models are the packaged, versioned files; nothing is trained on the fly.

Throughput: identical answers ("no", "n/a", "nothing to add") are analysed once per batch, and large
batches are split over worker processes, because TextBlob and the regex redaction are pure Python
and hold the GIL.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from analysis.codebook import Codebook, load_codebook
from analysis.sentiment import SentimentModel, textblob_scores
from analysis.sentiment import load_model as load_sentiment_model
from analysis.themes import ThemeModel
from analysis.themes import load_model as load_theme_model

__all__ = ["AnalysedBatch", "TextAnalyser"]


class _Redactor(Protocol):
    def transform(self, X: Any) -> list[str]: ...


class _Safeguarding(Protocol):
    def predict(self, X: Any) -> Any: ...


@dataclass
class AnalysedBatch:
    """Column-wise results for a batch (what :meth:`TextAnalyser.analyse` turns into dicts)."""

    redacted: list[str]
    sentiment_proba: np.ndarray  # (n, 3) in sentiment_labels order
    sentiment_labels: list[str]
    theme_proba: np.ndarray  # (n, n_themes) in theme_codes order
    theme_codes: list[str]
    theme_thresholds: np.ndarray
    safeguarding: np.ndarray  # (n,) bool


# A worker process inherits (fork) or receives (spawn) one analyser and reuses it for every chunk.
_WORKER: TextAnalyser | None = None


def _init_worker(analyser: TextAnalyser | None) -> None:
    global _WORKER
    _WORKER = analyser if analyser is not None else _WORKER


def _work(texts: list[str]) -> AnalysedBatch:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER._analyse_serial(texts)


class TextAnalyser:
    """Redaction, sentiment, themes and safeguarding for batches of answers.

    Build it with :meth:`load` in production; the constructor takes ready components so tests and
    tools can inject small models.
    """

    def __init__(self, themes: ThemeModel, sentiment: SentimentModel, redactor: _Redactor,
                 safeguarding: _Safeguarding, *, n_jobs: int | None = None,
                 parallel_min: int = 4000, safeguarding_version: str = "safeguarding") -> None:
        self.themes = themes
        self.sentiment = sentiment
        self.redactor = redactor
        self.safeguarding = safeguarding
        self.n_jobs = n_jobs
        self.parallel_min = parallel_min
        self.safeguarding_version = safeguarding_version

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def load(cls, codebook: Codebook | None = None, *, n_jobs: int | None = None) -> TextAnalyser:
        """Load the packaged models for ``codebook`` (default: codebook v1).

        Raises ``FileNotFoundError`` when a model file is missing and
        :class:`analysis.themes.ModelVersionError` when the theme model was trained on another
        codebook version; it never trains.
        """
        from analysis.redaction import Redactor
        from analysis.safeguarding import SafeguardingDetector

        codebook = codebook or load_codebook()
        sg_version = "safeguarding"
        try:
            from analysis.safeguarding import load_metadata

            sg_version = str(load_metadata().get("model_version", sg_version))
        except Exception:  # metadata is for display only; a missing field must not block analysis
            pass
        return cls(
            themes=load_theme_model(codebook),
            sentiment=load_sentiment_model(),
            redactor=Redactor(),
            safeguarding=SafeguardingDetector.load(),
            n_jobs=n_jobs,
            safeguarding_version=sg_version,
        )

    @property
    def model_version(self) -> str:
        """Identifier of every model that produced a result, e.g. ``themes-cb1-…+sentiment-…+…``."""
        return f"{self.themes.model_version}+{self.sentiment.model_version}+{self.safeguarding_version}"

    @property
    def theme_codes(self) -> list[str]:
        """Theme codes in score order."""
        return self.themes.codes

    # -- analysis ---------------------------------------------------------------------------------------
    def analyse(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Analyse answers; one dict per text, in order.

        Each dict: ``redacted`` (str), ``sentiment`` ("negative" | "neutral" | "positive"),
        ``sentiment_scores`` ({label: probability}), ``themes`` ([codes] over their thresholds,
        codebook order), ``theme_scores`` ({code: probability}), ``safeguarding`` (bool),
        ``model_version`` (str).
        """
        batch = self.analyse_batch(texts)
        version = self.model_version
        s_labels = batch.sentiment_labels
        codes = batch.theme_codes
        out: list[dict[str, Any]] = []
        s_best = batch.sentiment_proba.argmax(axis=1) if len(texts) else np.zeros(0, dtype=int)
        over = batch.theme_proba >= batch.theme_thresholds
        s_round = np.round(batch.sentiment_proba, 4).tolist()
        t_round = np.round(batch.theme_proba, 4).tolist()
        for i in range(len(batch.redacted)):
            out.append({
                "redacted": batch.redacted[i],
                "sentiment": s_labels[s_best[i]],
                "sentiment_scores": dict(zip(s_labels, s_round[i], strict=True)),
                "themes": [codes[j] for j in np.flatnonzero(over[i])],
                "theme_scores": dict(zip(codes, t_round[i], strict=True)),
                "safeguarding": bool(batch.safeguarding[i]),
                "model_version": version,
            })
        return out

    def analyse_batch(self, texts: Sequence[str]) -> AnalysedBatch:
        """Column-wise analysis of ``texts`` (deduplicated, parallel for large batches)."""
        if isinstance(texts, str):
            raise ValueError("analyse() takes a list of texts, not one string")
        texts = ["" if t is None else str(t) for t in texts]
        # Many answers are identical ("no", "n/a"); analyse each distinct text once.
        index: dict[str, int] = {}
        inverse = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64,
                              count=len(texts))
        unique = list(index)
        n_jobs = self._effective_jobs(len(unique))
        result = self._analyse_parallel(unique, n_jobs) if n_jobs > 1 else self._analyse_serial(unique)
        return AnalysedBatch(
            redacted=[result.redacted[k] for k in inverse],
            sentiment_proba=result.sentiment_proba[inverse],
            sentiment_labels=result.sentiment_labels,
            theme_proba=result.theme_proba[inverse],
            theme_codes=result.theme_codes,
            theme_thresholds=result.theme_thresholds,
            safeguarding=result.safeguarding[inverse],
        )

    def _effective_jobs(self, n: int) -> int:
        if n < self.parallel_min:
            return 1
        jobs = self.n_jobs if self.n_jobs is not None else (os.cpu_count() or 1)
        return max(1, min(jobs, os.cpu_count() or 1))

    def _analyse_parallel(self, texts: list[str], n_jobs: int) -> AnalysedBatch:
        methods = multiprocessing.get_all_start_methods()
        # fork shares the loaded models copy-on-write instead of pickling them to each worker.
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        global _WORKER
        previous, _WORKER = _WORKER, self
        n_chunks = n_jobs * 4
        bounds = np.linspace(0, len(texts), n_chunks + 1).astype(int)
        chunks = [texts[a:b] for a, b in itertools.pairwise(bounds) if b > a]
        try:
            init_arg = None if ctx.get_start_method() == "fork" else self
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_init_worker,
                                     initargs=(init_arg,)) as pool:
                parts = list(pool.map(_work, chunks))
        finally:
            _WORKER = previous
        first = parts[0]
        return AnalysedBatch(
            redacted=[r for p in parts for r in p.redacted],
            sentiment_proba=np.vstack([p.sentiment_proba for p in parts]),
            sentiment_labels=first.sentiment_labels,
            theme_proba=np.vstack([p.theme_proba for p in parts]),
            theme_codes=first.theme_codes,
            theme_thresholds=first.theme_thresholds,
            safeguarding=np.concatenate([p.safeguarding for p in parts]),
        )

    def _analyse_serial(self, texts: list[str]) -> AnalysedBatch:
        redacted = list(self.redactor.transform(texts)) if texts else []
        s_clf = self.sentiment.classifier
        t_clf = self.themes.classifier
        n_themes = len(t_clf.classes_)
        if texts:
            scores = textblob_scores(redacted)
            s_proba = s_clf.predict_proba(redacted, scores=scores)
            t_proba = t_clf.predict_proba(redacted)
            alerts = np.asarray(self.safeguarding.predict(texts), dtype=bool)
        else:
            s_proba = np.zeros((0, len(s_clf.classes_)))
            t_proba = np.zeros((0, n_themes))
            alerts = np.zeros(0, dtype=bool)
        return AnalysedBatch(
            redacted=redacted,
            sentiment_proba=np.asarray(s_proba, dtype=float),
            sentiment_labels=[str(c) for c in s_clf.classes_],
            theme_proba=np.asarray(t_proba, dtype=float),
            theme_codes=[str(c) for c in t_clf.classes_],
            theme_thresholds=np.asarray(t_clf.thresholds_, dtype=float),
            safeguarding=alerts,
        )


def train_models(codebook: Codebook | None = None, directory: str | os.PathLike[str] | None = None) -> str:
    """Rebuild the packaged theme and sentiment model files from the training split.

    An offline step (``python -m analysis.pipeline``), never called while analysing: returns the new
    combined model version.
    """
    from pathlib import Path

    from analysis import sentiment, themes

    target = Path(directory) if directory is not None else themes.MODEL_DIR
    theme_model = themes.train(codebook or load_codebook(), save_to=target)
    sentiment_model = sentiment.train(save_to=target)
    return f"{theme_model.model_version}+{sentiment_model.model_version}"


if __name__ == "__main__":
    print(train_models())
