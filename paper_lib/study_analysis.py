"""Analysis of the human study (paper section 6, Tables 1, 2 and 4; supplement 8.8, 8.10).

- Consensus (section 5): "agreement amongst 3 or more annotators". With 9 annotators and 4 labels two
  labels can both reach 3 votes, so we take the label with the most votes when it has at least
  ``min_votes`` and no other label has as many; a tie at the top, or no label with ``min_votes``,
  gives no consensus (the sample is left out of the label fractions).
- Label fractions per scheme (Tables 1, 4): the share of each consensus label among the scheme's samples
  that reached consensus, with the scheme's mean D_r over all its generated samples.
- Agreement: Fleiss' kappa (statsmodels) over the samples every annotator of the panel labelled.
- Significance (section 6): chi-squared and G tests (``scipy.stats.chi2_contingency``, the G test with
  ``lambda_="log-likelihood"``) on the scheme x consensus-label contingency table, one scheme against each
  baseline; label columns empty in both rows are dropped.
- Metrics by consensus label (Table 2) and the "creativity" classifier: L1-regularised logistic regression
  on the per-sample surrogate metrics, 10-fold cross-validated accuracy against the best single metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.inter_rater import fleiss_kappa

from .study_batch import STUDY_SCHEMES
from .study_store import LABELS, PAPER_CODES

CODES = ["L1", "L2", "L3", "L4"]  # creative, novel but not creative, not novel or creative, inconclusive
LABEL_OF_CODE = {code: label for label, code in PAPER_CODES.items()}
DISPLAY_NAMES = {"nonspecific": "Non-specific", "low_active": "Low-active", "noisy": "Noisy", "random": "Random",
                 "regular": "Regular"}
BASELINES = ("noisy", "random", "regular")
METRIC_COLUMNS = ["regen_dist", "input_1nn", "input_5nn", "input_1nn_norm", "input_5nn_norm", "latent_1nn",
                  "latent_5nn", "latent_1nn_norm", "latent_5nn_norm", "ice_mnist", "ice_fmnist", "oc_score"]
TABLE2_COLUMNS = {"latent_5nn_norm": "NS_z", "regen_dist": "D_r", "ice_mnist": "ICE_M", "ice_fmnist": "ICE_F",
                  "oc_score": "IS"}


def batch_samples(key: pd.DataFrame, per_sample: pd.DataFrame) -> pd.DataFrame:
    """The batch key with each sample's surrogate metrics (notebook 05) attached."""
    metrics = per_sample.rename(columns={"index": "source_index"})
    merged = key.merge(metrics.drop(columns=["passes_filter"], errors="ignore"), on=["scheme", "source_index"],
                       how="left", validate="one_to_one", indicator=True)
    lost = merged[merged["_merge"] != "both"]
    if len(lost):
        raise ValueError(f"{len(lost)} batch samples have no per-sample metrics (e.g. {lost['scheme'].iloc[0]} "
                         f"#{lost['source_index'].iloc[0]}): rerun notebook 05 on the same samples")
    return merged.drop(columns="_merge")


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame, on, columns) -> pd.DataFrame:
    """Our values next to the paper's: for each column ``c``, ``c`` (ours) and ``c_paper``; rows matched on
    ``on`` (a column name or a list), in our order, then rows only the paper has."""
    on = [on] if isinstance(on, str) else list(on)
    columns = [c for c in columns if c in ours and c in paper]
    merged = ours[[*on, *columns]].merge(paper[[*on, *columns]], on=on, how="outer", suffixes=("", "_paper"))
    rank = ours[on].drop_duplicates().assign(_rank=lambda frame: np.arange(len(frame)))
    merged = merged.merge(rank, on=on, how="left").sort_values("_rank", na_position="last", kind="stable")
    return merged[[*on, *(c for column in columns for c in (column, f"{column}_paper"))]].reset_index(drop=True)


def vote_counts(annotations: pd.DataFrame, sample_ids) -> pd.DataFrame:
    """Samples x labels table of how many annotators chose each label (rows in ``sample_ids`` order)."""
    counts = pd.crosstab(annotations["sample_id"], annotations["label"])
    return counts.reindex(index=list(sample_ids), columns=list(LABELS), fill_value=0).astype(int)


def consensus(counts: pd.DataFrame, min_votes: int = 3) -> pd.Series:
    """Each sample's consensus label, or None (see the module docstring for the rule)."""
    values = counts[list(LABELS)].to_numpy()
    top = values.max(axis=1)
    unique_top = (values == top[:, None]).sum(axis=1) == 1
    winner = np.array(LABELS, dtype=object)[values.argmax(axis=1)]
    return pd.Series(np.where((top >= min_votes) & unique_top, winner, None), index=counts.index, name="consensus",
                     dtype=object)


def fleiss(counts: pd.DataFrame) -> dict:
    """Fleiss' kappa over the samples labelled by the largest number of annotators any sample has."""
    values = counts[list(LABELS)].to_numpy()
    raters = values.sum(axis=1)
    complete = values[raters == raters.max()] if len(values) else values
    if len(complete) < 2 or raters.max() < 2:
        raise ValueError("Fleiss' kappa needs at least 2 samples each labelled by the same >= 2 annotators")
    return {"kappa": float(fleiss_kappa(complete, method="fleiss")), "samples": len(complete),
            "raters_per_sample": int(raters.max())}


def study_group(key: pd.DataFrame) -> pd.Series:
    """The row a sample counts under: its scheme, or "<scheme> (filter)" when drawn through the filter."""
    return key["scheme"].where(~key["filtered"].astype(bool), key["scheme"] + " (filter)")


def label_table(key: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Groups x codes L1..L4 counts of consensus labels (samples without consensus left out)."""
    group = study_group(key).to_numpy()
    codes = labels.reindex(key["sample_id"]).map(PAPER_CODES).to_numpy()
    table = pd.crosstab(pd.Series(group, name="group"), pd.Series(codes, name="code"))
    return table.reindex(index=sorted(set(group)), columns=CODES, fill_value=0)


def label_fractions(key: pd.DataFrame, labels: pd.Series, per_sample: pd.DataFrame) -> pd.DataFrame:
    """Tables 1 and 4: per group the fraction of each consensus label, its sample counts and mean D_r.

    D_r is the mean over all generated samples of the scheme (as in the paper), or over those that passed
    the creativity filter for a "(filter)" group.
    """
    counts = label_table(key, labels)
    fractions = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
    group = study_group(key)
    out = fractions.assign(n_samples=group.value_counts(), n_consensus=counts.sum(axis=1))
    d_r = {}
    for name in out.index:
        scheme = name.removesuffix(" (filter)")
        rows = per_sample[per_sample["scheme"] == scheme]
        d_r[name] = rows.loc[rows["passes_filter"].astype(bool) if name.endswith("(filter)") else rows.index,
                             "regen_dist"].mean()
    out["D_r"] = pd.Series(d_r)
    order = [g for s in STUDY_SCHEMES for g in (s, f"{s} (filter)") if g in out.index]
    out = out.loc[order].rename_axis("group").reset_index()
    filtered = out["group"].str.endswith(" (filter)")
    scheme = out["group"].str.removesuffix(" (filter)")
    # the paper's row names, e.g. "Low-active" and "Low-active(filter)" (Tables 4 and 8)
    names = scheme.map(DISPLAY_NAMES) + np.where(filtered, "(filter)", "")
    return pd.concat([pd.DataFrame({"scheme": scheme, "filtered": filtered, "paper_scheme": names}),
                      out.drop(columns="group")], axis=1)


def independence_tests(counts: pd.DataFrame, target: str = "low_active", baselines=BASELINES) -> pd.DataFrame:
    """Chi-squared and G tests of ``target``'s consensus-label counts against each baseline's."""
    rows = []
    for baseline in baselines:
        table = counts.loc[[target, baseline]].to_numpy()
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
            rows.append({"scheme": target, "baseline": baseline, "dof": 0})
            continue
        chi2, chi2_p, dof, _ = chi2_contingency(table)
        g, g_p, _, _ = chi2_contingency(table, lambda_="log-likelihood")
        rows.append({"scheme": target, "baseline": baseline, "dof": dof, "chi2": chi2, "chi2_p": chi2_p,
                     "g": g, "g_p": g_p})
    return pd.DataFrame(rows, columns=["scheme", "baseline", "dof", "chi2", "chi2_p", "g", "g_p"])


def metrics_by_label(samples: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Table 2: mean of each surrogate metric over the samples of each consensus label (rows L1..L4)."""
    columns = [c for c in TABLE2_COLUMNS if c in samples and samples[c].notna().any()]
    codes = labels.reindex(samples["sample_id"]).map(PAPER_CODES).to_numpy()
    table = samples[columns].groupby(codes).mean().reindex(CODES).rename(columns=TABLE2_COLUMNS)
    table["n"] = pd.Series(codes).value_counts().reindex(CODES).fillna(0).astype(int)
    return table.rename_axis("code").reset_index()


def classifier_data(samples: pd.DataFrame, labels: pd.Series,
                    target: str = "binary") -> tuple[pd.DataFrame, np.ndarray]:
    """Features (metric columns without missing values) and classes of the samples with a usable consensus.

    ``binary``: creative (1) against novel-but-not-creative or not-novel (0), as in section 6;
    ``three_class``: creative, novel but not creative, not novel or creative, as in the supplement.
    Inconclusive and no-consensus samples are left out.
    """
    if target not in ("binary", "three_class"):
        raise ValueError(f"target={target!r}: choose 'binary' or 'three_class'")
    label = labels.reindex(samples["sample_id"]).to_numpy()
    keep = np.isin(label, ["creative", "novel but not creative", "not novel or creative"])
    features = samples.loc[keep, [c for c in METRIC_COLUMNS if c in samples]]
    features = features.loc[:, features.notna().all()]
    y = (label[keep] == "creative").astype(int) if target == "binary" else label[keep].astype(str)
    return features.reset_index(drop=True), y


def creativity_classifier(samples: pd.DataFrame, labels: pd.Series, target: str = "binary", folds: int = 10,
                          C: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """10-fold CV accuracy of L1 logistic regression on all metrics, on each single metric, and of always
    predicting the majority class. Rows sorted with the all-metrics model first."""
    X, y = classifier_data(samples, labels, target)
    classes, per_class = np.unique(y, return_counts=True)
    if len(classes) < 2 or per_class.min() < 2:
        raise ValueError(f"the creativity classifier needs >= 2 samples in each of >= 2 classes; got "
                         f"{dict(zip(classes.tolist(), per_class.tolist()))} ({target})")
    cv = StratifiedKFold(n_splits=min(folds, int(per_class.min())), shuffle=True, random_state=seed)

    def accuracy(columns):
        model = make_pipeline(StandardScaler(), LogisticRegression(l1_ratio=1.0, C=C, solver="saga", max_iter=5000))
        scores = cross_val_score(model, X[columns].to_numpy(), y, cv=cv, scoring="accuracy")
        return scores.mean(), scores.std()

    rows = [("all metrics (L1 logistic)", *accuracy(list(X.columns)))]
    rows += [(f"single: {c}", *accuracy([c])) for c in X.columns]
    out = pd.DataFrame(rows, columns=["model", "cv_accuracy", "cv_std"])
    out = pd.concat([out.iloc[:1], out.iloc[1:].sort_values("cv_accuracy", ascending=False)])
    majority = pd.DataFrame([{"model": "majority class", "cv_accuracy": per_class.max() / per_class.sum(),
                              "cv_std": 0.0}])
    out = pd.concat([out, majority], ignore_index=True)
    return out.assign(target=target, n=len(y), folds=cv.n_splits)


def plot_label_fractions(table: pd.DataFrame, title: str):
    """Stacked bars of the consensus-label fractions per scheme (Tables 1 and 4 as a figure)."""
    import matplotlib.pyplot as plt

    colours = {"L1": "#2a9d8f", "L2": "#e9c46a", "L3": "#8d99ae", "L4": "#e76f51"}
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
    left = np.zeros(len(table))
    for code in CODES:
        values = table[code].fillna(0).to_numpy()
        ax.barh(table["paper_scheme"], values, left=left, color=colours[code],
                label=f"{code} {LABEL_OF_CODE[code]}")
        left += values
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of samples with a consensus label")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, fontsize=8, frameon=False)
    ax.set_title(title)
    return fig


def plot_label_examples(images, codes: pd.Series, title: str, per_label: int = 10):
    """Up to ``per_label`` images of each consensus label, one row per label (the paper's Fig. 2A-C)."""
    import matplotlib.pyplot as plt

    from .plots import show_grid

    fig, axes = plt.subplots(len(CODES), 1, figsize=(per_label * 0.6, len(CODES) * 0.95))
    for ax, code in zip(axes, CODES):
        picks = np.flatnonzero(codes.to_numpy() == code)[:per_label]
        if len(picks):
            show_grid(ax, images[picks].float() / 255, ncol=per_label)
        else:
            ax.axis("off")
        ax.set_title(f"{code} {LABEL_OF_CODE[code]} ({(codes == code).sum()})", fontsize=8, loc="left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
