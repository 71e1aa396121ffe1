"""The transcribed paper numbers: shapes, spot values read off the paper's text, internal consistency."""

import math

import pandas as pd
import pytest

from paper_lib import reference
from paper_lib.decoding import SCHEMES

DATASETS = ["mnist", "fmnist", "combined"]


def value(table, column, **where):
    frame = reference.table(table)
    for key, wanted in where.items():
        frame = frame[frame[key] == wanted]
    assert len(frame) == 1, (table, where)
    return frame[column].iloc[0]


@pytest.mark.parametrize("name, shape", [
    ("table1", (12, 8)), ("table2", (12, 7)), ("table3", (4, 4)), ("table4", (15, 8)),
    ("table5", (45, 12)), ("table6", (45, 12)), ("table7", (45, 12)), ("table8", (21, 8)), ("table9", (12, 7)),
    ("classifier_accuracy", (2, 3)), ("dead_neurons", (9, 4)), ("off_neurons", (3, 5)),
    ("inception_scores", (3, 6)), ("fleiss_kappa", (3, 4)), ("creativity_classifier", (2, 6)),
])
def test_table_shapes(name, shape):
    assert reference.table(name).shape == shape


def test_human_label_tables():
    assert value("table1", "D_r", dataset="mnist", scheme="low_active") == 4.87
    assert value("table1", "L1", dataset="fmnist", scheme="noisy") == 0.19
    assert value("table1", "L1", dataset="combined", scheme="noisy") == 0.25
    assert value("table4", "L1", dataset="combined", scheme="noisy") == 0.26  # differs from Table 1 as printed
    assert value("table4", "D_r", dataset="combined", scheme="nonspecific") == 4.52
    assert value("table8", "L4", dataset="fmnist", scheme="low_active", filtered=True) == 0.090
    assert value("table8", "L1", dataset="mnist", scheme="low_active", filtered=True) == 0.47
    assert set(reference.table("table4")["scheme"]) <= set(SCHEMES)
    for name in ("table1", "table4"):  # label fractions of a scheme sum to 1 (up to rounding)
        sums = reference.table(name)[["L1", "L2", "L3", "L4"]].sum(axis=1)
        assert sums.between(0.97, 1.03).all(), name


def test_metric_tables():
    assert value("table2", "IS", dataset="fmnist", label="L1") == 341.557
    assert value("table2", "ICE_F", dataset="combined", label="L4") == 0.228
    assert math.isnan(value("table2", "ICE_F", dataset="mnist", label="L1"))
    assert value("table9", "NS_z", dataset="combined", label="L2") == 1.48
    assert value("table3", "nll", dataset="combined") == 145969.7
    assert value("table3", "kl", dataset="celebA") == 577.7


def test_sweep_tables_and_ocr_repairs():
    sweep = reference.sweep()
    assert sweep.shape == (135, 12)
    assert value("table5", "oc_score", approach="2interp", n_on=0) == 661.20
    assert value("table6", "input_1nn", approach="ent", n_on=25) == 7.06
    assert value("table7", "latent_5nn", approach="loact", n_on=25) == 2.22
    noisy = reference.table("table7").query("approach == 'noise' and n_on == 25").iloc[0]
    assert (noisy.oc_score, noisy.input_1nn, noisy.input_1nn_norm, noisy.input_5nn_norm, noisy.latent_5nn) == \
        (537.78, 4.66, 1.32, 1.29, 1.51)
    assert "OCR" in noisy.note
    mnist_noise = reference.table("table5").query("approach == 'noise' and n_on == 25").iloc[0]
    assert (mnist_noise.input_1nn, mnist_noise.input_5nn) == (4.07, 4.46)
    assert sweep.query("approach == 'test'")[reference.SWEEP_METRICS].isna().all(axis=None)
    for table in ("table5", "table6", "table7"):
        frame = reference.table(table)
        assert frame.groupby("n_on").size().to_dict() == {0: 3, 1: 7, 5: 7, 10: 7, 15: 7, 20: 7, 25: 7}


def test_sweep_matches_table1_at_five_neurons():
    """Tables 5-7 at n = 5 repeat Table 1's D_r: the check that the captions were matched to the right tables."""
    names = {"loact": "low_active", "rand": "random", "noise": "noisy"}
    for dataset in DATASETS:
        sweep = reference.sweep(dataset).query("n_on == 5").set_index("approach")["regen_dist"]
        table1 = reference.d_r(dataset, "table1")
        for approach, scheme in names.items():
            assert sweep[approach] == table1[scheme], (dataset, approach)


def test_scalars():
    assert value("classifier_accuracy", "accuracy", dataset="mnist") == 0.9928
    assert value("classifier_accuracy", "accuracy", dataset="fmnist") == 0.9299
    assert reference.table("dead_neurons").query("dataset == 'fmnist'")["dead"].tolist() == [0, 136, 226]
    assert value("off_neurons", "off_mean", dataset="combined") == 797
    assert value("off_neurons", "off_std", dataset="combined") == 32
    assert value("inception_scores", "low", images="creative") == 7.0
    assert value("inception_scores", "high", images="test") == 9.9
    assert reference.table("fleiss_kappa")["kappa"].tolist() == [-0.47, -0.46, -0.38]
    assert reference.table("creativity_classifier")["cv_accuracy"].tolist() == [0.710, 0.607]
    assert reference.setting("ocsvm_gamma") == 0.1 and reference.setting("ocsvm_nu") == 0.15
    assert reference.setting("flip_statistic") == "max"


def test_bad_names():
    with pytest.raises(KeyError, match="choose one of"):
        reference.table("table10")
    with pytest.raises(ValueError, match="choose one of"):
        reference.sweep("cifar")
    with pytest.raises(KeyError, match="choose one of"):
        reference.setting("nope")


def test_tables_are_copies():
    first = reference.table("table1")
    first.loc[0, "D_r"] = -1
    assert reference.table("table1").loc[0, "D_r"] != -1
    assert isinstance(reference.table("labels"), pd.DataFrame)
