"""Benchmark of the free-text analysis: ``python bench/text.py [--n 100000] [--jobs N]``.

Generates answers by recombining clauses of the labelled corpus (with light noise so that almost all
are distinct: the per-batch de-duplication must not flatter the figure), runs redaction + sentiment +
themes through :class:`analysis.pipeline.TextAnalyser` (the goal: 100k answers < 60 s on 2 cores),
then emerging-topic discovery over the poorly explained answers (goal < 30 s). The safeguarding
detector belongs to the same pipeline but not to that goal; it is timed on its own over
``--safeguarding-n`` answers. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.pipeline import TextAnalyser
from analysis.themes import TEST_FILE, TRAIN_FILE, load_labelled
from analysis.topics import EmergingTopics, find_emerging_topics

_CLAUSE = re.compile(r"(?<=[.!?])\s+|,\s+(?:and|but|so)\s+")
_FILLERS = ["honestly", "to be fair", "tbh", "if im honest", "at the time", "looking back", "overall",
            "in the end", "to be honest", "I think", "for me", "at first"]
_NAMES = ["Sarah", "Mohammed", "Dave", "Priya", "Tom", "Agnieszka", "Kelly", "Jamal"]


def generate(n: int, seed: int = 7) -> list[str]:
    """``n`` answers of roughly 10-60 words recombined from corpus clauses, with noise and some PII."""
    rng = random.Random(seed)
    rows = load_labelled(TRAIN_FILE) + load_labelled(TEST_FILE)
    clauses = [c.strip() for r in rows for c in _CLAUSE.split(r["text"]) if len(c.split()) >= 3]
    shorts = [r["text"] for r in rows if len(r["text"].split()) <= 3]
    out: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.04:
            out.append(rng.choice(shorts))  # real surveys have many "no", "n/a"
            continue
        k = rng.choice((1, 2, 2, 3, 3, 4))
        parts = [rng.choice(clauses) for _ in range(k)]
        if rng.random() < 0.3:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(_FILLERS))
        text = ". ".join(p.rstrip(".") for p in parts) + "."
        if rng.random() < 0.1:
            text += f" My worker {rng.choice(_NAMES)} rang on 07{rng.randrange(10**8, 10**9)}."
        if rng.random() < 0.2:
            text = text.lower()
        out.append(text)
    return out


class _NoAlerts:
    """Bench-only stand-in so the goal's three steps are timed without the safeguarding detector."""

    def predict(self, X: list[str]) -> np.ndarray:
        return np.zeros(len(X), dtype=bool)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--safeguarding-n", type=int, default=10_000, help="answers to time safeguarding on")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    texts = generate(args.n)
    t_gen = time.perf_counter() - t0
    words = float(np.mean([len(t.split()) for t in texts]))
    n_unique = len(set(texts))

    t0 = time.perf_counter()
    full = TextAnalyser.load(n_jobs=args.jobs)
    t_load = time.perf_counter() - t0
    analyser = TextAnalyser(full.themes, full.sentiment, full.redactor, _NoAlerts(), n_jobs=args.jobs)

    t0 = time.perf_counter()
    batch = analyser.analyse_batch(texts)
    t_analyse = time.perf_counter() - t0

    sg_texts = texts[: args.safeguarding_n]
    t0 = time.perf_counter()
    full.safeguarding.predict(sg_texts)
    t_sg = time.perf_counter() - t0
    sg_rate = len(sg_texts) / t_sg if t_sg else float("inf")

    t0 = time.perf_counter()
    topics = find_emerging_topics(batch.redacted, batch.theme_proba, threshold=0.5, n_topics=args.topics)
    t_topics = time.perf_counter() - t0
    n_unexplained = topics[0].extra["n_unexplained"] if topics else 0

    # Worst case for the topic goal: the codebook explains nothing, so NMF runs over every answer.
    t0 = time.perf_counter()
    EmergingTopics(n_topics=args.topics).fit(batch.redacted)
    t_topics_all = time.perf_counter() - t0

    print(f"generated {args.n} answers ({n_unique} distinct, mean {words:.1f} words) in {t_gen:.1f} s")
    jobs = analyser._effective_jobs(n_unique)
    print(f"models loaded in {t_load:.2f} s; cores {os.cpu_count()}, jobs {jobs}")
    print(f"redaction + sentiment + themes: {t_analyse:.1f} s "
          f"({args.n / t_analyse:,.0f} answers/s; goal < 60 s)")
    print(f"safeguarding alone (one process): {len(sg_texts)} answers in {t_sg:.1f} s "
          f"({sg_rate:,.0f} answers/s, ~{args.n / sg_rate:.0f} s per {args.n})")
    print(f"emerging topics over {n_unexplained} poorly explained answers: {t_topics:.1f} s; "
          f"over all {args.n} answers: {t_topics_all:.1f} s (goal < 30 s)")
    for t in topics[:5]:
        print(f"  topic {t.index} ({t.size} answers): {', '.join(t.terms[:6])}")
    print(json.dumps({
        "n": args.n,
        "n_distinct": n_unique,
        "mean_words": round(words, 1),
        "analyse_seconds": round(t_analyse, 2),
        "topics_seconds": round(t_topics, 2),
        "topics_all_seconds": round(t_topics_all, 2),
        "load_seconds": round(t_load, 2),
        "safeguarding_answers_per_second": round(sg_rate, 1),
        "n_unexplained": n_unexplained,
        "analyse_goal_met": t_analyse < 60,
        "topics_goal_met": max(t_topics, t_topics_all) < 30,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
