"""A simulated annotator panel, so the human-study analysis runs end to end before people have labelled.

Everything built from it is marked SIMULATED: its numbers show that the pipeline works, never what
people think. The model (9 annotators, as in the paper's section 5):

    novelty      u_i = mean of the batch z-scores of D_r (regen_dist) and latent kNS (latent_5nn_norm)
    implausible  g_i = mean of the batch z-scores of the classifier entropy (ICE, mean over the available
                       classifiers) and of minus the in-domain score (-oc_score: lower = more outlying)
    logit of label l for annotator a on sample i:
                 eta_ail = w0_l + wu_l * u_i + wg_l * g_i + b_al,   b_al ~ N(0, annotator_sd^2) fixed per annotator
    label ~ Categorical(softmax(eta_ai)), independently per (annotator, sample)

with weights (``WEIGHTS``): "not novel or creative" falls with novelty; "novel but not creative" rises
with novelty and implausibility; "creative" rises with novelty and falls with implausibility;
"inconclusive" is rare and a little likelier for implausible images. A metric missing for a sample
counts as 0 (the batch mean). Annotator offsets b_al make the panel disagree as real panels do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .study_store import LABELS, AnnotationStore

PANEL_SIZE = 9
#                     intercept, novelty u, implausible g  (rows in LABELS order)
WEIGHTS = np.array([[0.5, -1.5, 0.0],    # not novel or creative
                    [0.0, 1.0, 1.0],     # novel but not creative
                    [0.0, 1.0, -0.5],    # creative
                    [-2.0, 0.0, 0.5]])   # inconclusive


def zscore(values: pd.Series) -> np.ndarray:
    values = values.astype(float)
    sd = values.std()
    return ((values - values.mean()) / (sd if sd > 0 else 1.0)).fillna(0.0).to_numpy()


def sample_traits(samples: pd.DataFrame) -> np.ndarray:
    """[N, 3] design matrix (1, novelty u, implausibility g) from per-sample metric columns."""
    novelty = (zscore(samples["regen_dist"]) + zscore(samples["latent_5nn_norm"])) / 2
    entropy_columns = [c for c in ("ice_mnist", "ice_fmnist") if c in samples and samples[c].notna().any()]
    entropy = samples[entropy_columns].mean(axis=1) if entropy_columns else pd.Series(0.0, index=samples.index)
    implausible = (zscore(entropy) + zscore(-samples["oc_score"])) / 2
    return np.column_stack([np.ones(len(samples)), novelty, implausible])


def simulate_panel(samples: pd.DataFrame, panel_size: int = PANEL_SIZE, annotator_sd: float = 0.5,
                   seed: int = 0) -> pd.DataFrame:
    """Simulated annotations of ``samples`` (needs sample_id and metric columns) in the store's format."""
    if panel_size < 1:
        raise ValueError(f"panel_size={panel_size}: need at least one simulated annotator")
    rng = np.random.default_rng(seed)
    traits = sample_traits(samples)  # [N, 3]
    base = traits @ WEIGHTS.T  # [N, 4]
    rows = []
    for a in range(panel_size):
        logits = base + rng.normal(0.0, annotator_sd, size=len(LABELS))
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        choice = (rng.random((len(samples), 1)) > probs.cumsum(axis=1)).sum(axis=1)
        rows.append(pd.DataFrame({"annotator": f"simulated-{a + 1:02d}", "sample_id": samples["sample_id"].to_numpy(),
                                  "label": np.array(LABELS)[np.minimum(choice, len(LABELS) - 1)]}))
    return pd.concat(rows, ignore_index=True).assign(answered_at=None, seconds=np.nan)


def study_panel(store: AnnotationStore, batch: str, samples: pd.DataFrame, min_annotators: int = 3,
                panel_size: int = PANEL_SIZE, seed: int = 0) -> tuple[pd.DataFrame, bool]:
    """The real annotations of ``batch`` when at least ``min_annotators`` people labelled it, else a
    simulated panel; returns (annotations, simulated)."""
    real = store.annotations(batch=batch)
    if real["annotator"].nunique() >= min_annotators:
        return real, False
    return simulate_panel(samples, panel_size, seed=seed), True
