"""The paper's claims about the surrogate metrics, checked on our numbers and on the paper's own.

    table = check_claims("mnist", main, sweep, scores)   # one row per claim: both numbers, PASS / FAIL

Each claim is a direction check written as a function of a *view* of the results, so the same test
runs on our tables (notebook 05's ``metrics_main``, ``novelty_sweep`` and FID/inception tables) and on
the paper's (Tables 1/4, 5-7 and section 6). ``paper_result`` shows that our formalisation of a claim
holds on the paper's own numbers; ``result`` says whether our run supports it.

Formalisations (where the paper's wording is qualitative, the threshold is ours):

- D_r (Table 1, section 6): low-active > random, noisy and regular; noisy "near" regular:
  |D_r(noisy) - D_r(regular)| < 1/4 of D_r(low-active) - D_r(regular).
- novelty grows with n (section 8.9): the mean over the neuron-flipping approaches (3clust, clust, cor,
  ent, loact, rand; those with every cell) at n = 20 exceeds that at n = 1 for D_r, input 5-NS and latent 5NN, and the
  in-domain score falls.
- levels off near 20 (section 8.9): for D_r and input 5-NS, |m(25) - m(20)| < 0.15 |m(20) - m(1)|
  (steady growth would give 5/19 = 0.26).
- low-active is the most efficient at small n (section 8.9): the highest D_r of all approaches at n = 1.
- interpolation shows the opposite trend (sections 6, 8.10): 2interp and 6interp are less novel than the
  flipping approaches' mean at n = 1 (lower D_r and input 5-NS, higher in-domain score).
- inception score (section 6, MNIST classifier): test > low-active > random images.
"""

from __future__ import annotations

import math

import pandas as pd

from . import reference

FLIPPING = ("3clust", "clust", "cor", "ent", "loact", "rand")
APPROACHES = FLIPPING + ("noise",)
SCHEME_OF = {"loact": "low_active", "rand": "random", "noise": "noisy", "ent": "nonspecific",
             "cor": "correlation", "clust": "cluster", "3clust": "multi_cluster"}
SWEEP_NS = (1, 5, 10, 15, 20, 25)
NEAR_FRACTION, LEVEL_FRACTION = 0.25, 0.15


class _View:
    """Uniform access to one side's numbers; missing numbers raise KeyError."""

    def __init__(self, d_r: pd.Series, sweep: pd.DataFrame | None, inception: dict | None):
        self._d_r, self._sweep, self._inception = d_r, sweep, inception or {}

    def d_r(self, scheme: str) -> float:
        return float(self._d_r[scheme])

    def cell(self, approach: str, n: int, metric: str) -> float:
        if self._sweep is None:
            raise KeyError("no sweep")
        rows = self._sweep[(self._sweep["approach"] == approach) & (self._sweep["n_on"] == n)]
        if rows.empty or pd.isna(rows[metric].iloc[0]):
            raise KeyError(f"{approach} n={n}")
        return float(rows[metric].iloc[0])

    def flipping_mean(self, n: int, metric: str) -> float:
        """Mean over the flipping approaches that have a number in every sweep cell of ``metric``
        (a scheme whose pool is too small for some n is left out at every n, so the means stay comparable)."""
        complete = [a for a in FLIPPING if all(self.has(a, m, metric) for m in SWEEP_NS)]
        if not complete:
            raise KeyError(f"no flipping approach has every cell of {metric}")
        return sum(self.cell(a, n, metric) for a in complete) / len(complete)

    def has(self, approach: str, n: int, metric: str) -> bool:
        try:
            self.cell(approach, n, metric)
        except KeyError:
            return False
        return True

    def inception(self, images: str) -> tuple[float, float]:
        """(low, high) of the inception score of ``images`` ("test", "low_active", "random")."""
        if images not in self._inception:
            raise KeyError(images)
        return self._inception[images]


def _ours(main: pd.DataFrame | None, sweep: pd.DataFrame | None, scores: pd.DataFrame | None) -> _View:
    d_r = main.set_index("scheme")["regen_dist"] if main is not None else pd.Series(dtype=float)
    inception = {}
    if scores is not None and "inception_mnist" in scores:
        values = scores.set_index("scheme")["inception_mnist"]
        for images, scheme in (("test", "test"), ("low_active", "low_active"), ("random", "random_images")):
            if scheme in values and not pd.isna(values[scheme]):
                inception[images] = (float(values[scheme]),) * 2
    return _View(d_r, sweep, inception)


def _paper(dataset: str) -> _View:
    inception = {}
    if dataset == "mnist":
        published = reference.table("inception_scores").set_index("images")
        inception = {"test": tuple(published.loc["test", ["low", "high"]]),
                     "low_active": tuple(published.loc["creative", ["low", "high"]]),
                     "random": tuple(published.loc["random", ["low", "high"]])}
    return _View(reference.d_r(dataset, "table4"), reference.sweep(dataset), inception)


def _fmt(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 100 else f"{x:.1f}"


def _span(pair: tuple[float, float]) -> str:
    return _fmt(pair[0]) if pair[0] == pair[1] else f"{_fmt(pair[0])}-{_fmt(pair[1])}"


def _claims(dataset: str):
    """(claim, source, check) triples; ``check(view) -> (text with both sides' numbers, holds)``."""
    out = []
    for other in ("random", "noisy", "regular"):
        out.append((f"D_r: low-active > {other}", "Table 1",
                    lambda v, o=other: (f"{_fmt(v.d_r('low_active'))} > {_fmt(v.d_r(o))}", v.d_r("low_active") > v.d_r(o))))

    def near(v):
        gap, span = abs(v.d_r("noisy") - v.d_r("regular")), v.d_r("low_active") - v.d_r("regular")
        return f"|{_fmt(v.d_r('noisy'))} - {_fmt(v.d_r('regular'))}| = {_fmt(gap)} < {NEAR_FRACTION} x {_fmt(span)}", gap < NEAR_FRACTION * span
    out.append(("D_r: noisy stays near regular", "Table 1", near))

    for metric, sign in (("regen_dist", 1), ("input_5nn_norm", 1), ("latent_5nn", 1), ("oc_score", -1)):
        verb = "grows" if sign > 0 else "falls"
        out.append((f"{metric} {verb} with n (flipping mean, n=1 -> 20)", "Tables 5-7",
                    lambda v, m=metric, s=sign: (f"{_fmt(v.flipping_mean(1, m))} -> {_fmt(v.flipping_mean(20, m))}",
                                                 s * (v.flipping_mean(20, m) - v.flipping_mean(1, m)) > 0)))
    for metric in ("regen_dist", "input_5nn_norm"):
        def level(v, m=metric):
            m1, m20, m25 = (v.flipping_mean(n, m) for n in (1, 20, 25))
            ratio = abs(m25 - m20) / abs(m20 - m1) if m20 != m1 else math.inf
            return f"|{_fmt(m25)} - {_fmt(m20)}| / |{_fmt(m20)} - {_fmt(m1)}| = {ratio:.2f} < {LEVEL_FRACTION}", ratio < LEVEL_FRACTION
        out.append((f"{metric} levels off near n=20", "Tables 5-7", level))

    def loact_first(v):
        values = {a: v.cell(a, 1, "regen_dist") for a in APPROACHES if v.has(a, 1, "regen_dist")}
        if "loact" not in values or len(values) < 2:
            raise KeyError("low-active and another approach at n=1")
        best = max(values, key=values.get)
        runner = max((a for a in values if a != "loact"), key=values.get)
        return f"loact {_fmt(values['loact'])} vs best other {runner} {_fmt(values[runner])}", best == "loact"
    out.append(("low-active has the highest D_r at n=1", "Tables 5-7", loact_first))

    for interp in ("2interp", "6interp"):
        for metric, sign in (("regen_dist", -1), ("input_5nn_norm", -1), ("oc_score", 1)):
            rel = "<" if sign < 0 else ">"
            out.append((f"{interp} {metric} {rel} flipping mean at n=1", "Tables 5-7",
                        lambda v, i=interp, m=metric, s=sign, r=rel: (
                            f"{_fmt(v.cell(i, 0, m))} {r} {_fmt(v.flipping_mean(1, m))}",
                            s * (v.cell(i, 0, m) - v.flipping_mean(1, m)) > 0)))

    if dataset == "mnist":
        def inception(v):
            test, creative, rand = v.inception("test"), v.inception("low_active"), v.inception("random")
            return (f"{_span(test)} > {_span(creative)} > {_span(rand)}", test[0] > creative[1] and creative[0] > rand[1])
        out.append(("inception score: test > low-active > random images", "section 6", inception))
    return out


def _evaluate(check, view) -> tuple[str, str]:
    try:
        text, holds = check(view)
    except KeyError:
        return "n/a", "N/A"
    return text, "PASS" if holds else "FAIL"


def check_claims(dataset: str, main: pd.DataFrame | None = None, sweep: pd.DataFrame | None = None,
                 scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim: ``claim, source, ours, result, paper, paper_result`` (N/A where a number is missing).

    ``main``: one row per set with ``scheme`` and ``regen_dist`` (notebook 05's metrics_main);
    ``sweep``: ``approach, n_on`` and the sweep metrics; ``scores``: ``scheme`` and ``inception_mnist``.
    """
    if dataset not in reference.SWEEP_TABLES:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {list(reference.SWEEP_TABLES)}")
    ours, paper = _ours(main, sweep, scores), _paper(dataset)
    rows = []
    for claim, source, check in _claims(dataset):
        ours_text, result = _evaluate(check, ours)
        paper_text, paper_result = _evaluate(check, paper)
        rows.append({"dataset": dataset, "claim": claim, "source": source, "ours": ours_text, "result": result,
                     "paper": paper_text, "paper_result": paper_result})
    return pd.DataFrame(rows)


def d_r_table(main: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Our mean D_r per scheme (with its interval) next to the paper's (Table 4, which adds non-specific)."""
    paper = reference.d_r(dataset, "table4").rename("paper_D_r")
    ours = main.set_index("scheme")[["regen_dist", "regen_dist_lo", "regen_dist_hi"]]
    return ours.join(paper, how="left").reset_index()


def to_markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (numbers rounded to ``digits``)."""
    def cell(x):
        if isinstance(x, float):
            return "" if math.isnan(x) else f"{x:.{digits}f}"
        return str(x).replace("|", "\\|")
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"
