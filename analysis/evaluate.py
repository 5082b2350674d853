"""Held-out evaluation of the free-text models: ``python -m analysis.evaluate``.

Everything here is measured on data the models never saw in training: ``themes-test.jsonl`` for
themes and sentiment (answers are placed in it by :func:`analysis.themes.split_of`, a hash of the text,
when they are written; training reads only ``themes-train.jsonl``), and the redaction and safeguarding
modules' own held-out sets through their ``evaluation_report()``.
The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.preprocessing import MultiLabelBinarizer

from analysis.codebook import Codebook, load_codebook
from analysis.sentiment import SentimentModel, textblob_label, textblob_scores
from analysis.sentiment import load_model as load_sentiment_model
from analysis.themes import TEST_FILE, ThemeModel, load_labelled
from analysis.themes import load_model as load_theme_model

__all__ = ["evaluate_sentiment", "evaluate_themes", "main", "report"]


def evaluate_themes(model: ThemeModel, rows: list[dict[str, Any]], codebook: Codebook) -> dict[str, Any]:
    """Per-theme precision/recall/F1 and micro/macro F1 of the theme model on ``rows``."""
    codes = list(codebook.codes)
    Y = MultiLabelBinarizer(classes=codes).fit_transform([r["themes"] for r in rows])
    P = model.classifier.predict([r["text"] for r in rows])
    p, r, f, s = precision_recall_fscore_support(Y, P, average=None, zero_division=0)
    per_theme = {c: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
                 for j, c in enumerate(codes)}
    return {
        "n_texts": len(rows),
        "per_theme": per_theme,
        "micro_f1": float(f1_score(Y, P, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(Y, P, average="macro", zero_division=0)),
        # Answers with no theme must stay theme-less: how often the model invents one.
        "none_kept_none": float(np.mean(P[Y.sum(axis=1) == 0].sum(axis=1) == 0)) if (Y.sum(axis=1) == 0).any()
        else math.nan,
    }


def evaluate_sentiment(model: SentimentModel, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy and macro-F1 of the model and of TextBlob polarity alone on ``rows``."""
    texts = [r["text"] for r in rows]
    y = np.asarray([r["sentiment"] for r in rows], dtype=object)
    scores = textblob_scores(texts)
    pred = model.classifier.predict(texts, scores=scores)
    lo, hi = model.baseline_thresholds
    base = textblob_label(scores[:, 0], lo, hi)
    base_zero = textblob_label(scores[:, 0], 0.0, 0.0)
    return {
        "n_texts": len(rows),
        "model_accuracy": float(accuracy_score(y, pred)),
        "model_macro_f1": float(f1_score(y, pred, average="macro")),
        "textblob_accuracy": float(accuracy_score(y, base)),
        "textblob_macro_f1": float(f1_score(y, base, average="macro")),
        "textblob_thresholds": [lo, hi],
        "textblob_zero_threshold_accuracy": float(accuracy_score(y, base_zero)),
    }


def _optional_report(module: str) -> dict[str, Any] | None:
    try:
        mod = __import__(f"analysis.{module}", fromlist=["evaluation_report"])
    except ImportError:
        return None
    fn = getattr(mod, "evaluation_report", None)
    if fn is None:
        return None
    result = fn()
    return dict(result) if isinstance(result, dict) else {"result": result}


def report() -> dict[str, Any]:
    """All held-out figures as one dict."""
    codebook = load_codebook()
    rows = load_labelled(TEST_FILE)
    return {
        "themes": evaluate_themes(load_theme_model(codebook), rows, codebook),
        "sentiment": evaluate_sentiment(load_sentiment_model(), rows),
        "redaction": _optional_report("redaction"),
        "safeguarding": _optional_report("safeguarding"),
    }


def _fmt(x: Any) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:5.3f}"


def main(argv: list[str] | None = None) -> int:
    """Print the evaluation; the last line is a JSON summary."""
    rep = report()
    th, se = rep["themes"], rep["sentiment"]
    print(f"Themes on {th['n_texts']} held-out answers")
    print(f"  {'theme':<20} {'prec':>5} {'rec':>5} {'f1':>5} {'n':>4}")
    for code, m in th["per_theme"].items():
        print(f"  {code:<20} {_fmt(m['precision'])} {_fmt(m['recall'])} {_fmt(m['f1'])} {m['support']:>4}")
    print(f"  micro-F1 {_fmt(th['micro_f1'])}  macro-F1 {_fmt(th['macro_f1'])}  "
          f"no-theme answers left without theme {_fmt(th['none_kept_none'])}")
    print(f"Sentiment on {se['n_texts']} held-out answers")
    print(f"  model accuracy {_fmt(se['model_accuracy'])} (macro-F1 {_fmt(se['model_macro_f1'])})")
    print(f"  TextBlob alone {_fmt(se['textblob_accuracy'])} (macro-F1 {_fmt(se['textblob_macro_f1'])}, "
          f"thresholds {se['textblob_thresholds']} tuned on training data; "
          f"at 0: {_fmt(se['textblob_zero_threshold_accuracy'])})")
    summary: dict[str, Any] = {
        "theme_micro_f1": round(th["micro_f1"], 4),
        "theme_macro_f1": round(th["macro_f1"], 4),
        "sentiment_accuracy": round(se["model_accuracy"], 4),
        "textblob_accuracy": round(se["textblob_accuracy"], 4),
    }
    red = rep["redaction"]
    if red is not None:
        print(f"Redaction on {red.get('n_texts')} held-out texts: recall {_fmt(red.get('recall'))}")
        for etype, m in (red.get("per_type") or {}).items():
            print(f"  {etype:<12} recall {_fmt(m.get('recall'))}  precision {_fmt(m.get('precision'))}  "
                  f"n {m.get('support')}")
        summary["redaction_recall"] = red.get("recall")
        per_type = red.get("per_type") or {}
        summary["redaction_recall_per_type"] = {k: v.get("recall") for k, v in per_type.items()}
    else:
        print("Redaction: analysis.redaction.evaluation_report() not available")
    sg = rep["safeguarding"]
    if sg is not None:
        scalars = {k: v for k, v in sg.items() if isinstance(v, int | float | str | bool)}
        print("Safeguarding held-out: " + ", ".join(f"{k} {v}" for k, v in scalars.items()))
        for key in ("recall", "precision"):
            if key in sg:
                summary[f"safeguarding_{key}"] = sg[key]
    else:
        print("Safeguarding: analysis.safeguarding.evaluation_report() not available")
    print(json.dumps(summary, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
