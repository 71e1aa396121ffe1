"""The paper's VAE and classifier (section 8.3): shapes, named layers, the ELBO terms, learning."""

import math

import pytest
import torch

from paper_lib.models import VAE, Z_DIM, Classifier, elbo_terms
from paper_lib.train import ClassifierObjective, TrainSettings, VAEObjective, evaluate, fit


@pytest.mark.parametrize("dataset", ["mnist", "combined"])
def test_vae_shapes(dataset):
    vae = VAE(Z_DIM[dataset]).eval()
    x = torch.rand(5, 784)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (5, Z_DIM[dataset])
    recon = vae.decode(vae.reparameterize(mu, logvar))
    assert recon.shape == (5, 784) and recon.min() >= 0 and recon.max() <= 1
    recon, mu2, _ = vae(x.reshape(5, 1, 28, 28))  # images may come unflattened
    assert recon.shape == (5, 784) and torch.equal(mu, mu2)


def test_vae_decoder_layers_are_named_and_sized():
    vae = VAE(50).eval()
    modules = dict(vae.named_modules())
    sizes = {}
    hooks = [modules[name].register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[1]))
             for name in vae.decoder_layers]
    vae.decode(torch.zeros(2, 50))
    for hook in hooks:
        hook.remove()
    assert sizes == {"decoder.relu1": 250, "decoder.relu2": 500, "decoder.relu3": 1000}
    assert isinstance(modules["decoder.drop3"], torch.nn.Dropout) and modules["decoder.drop3"].p == 0.10


def test_dropout_only_in_training():
    vae = VAE(50)
    z = torch.randn(3, 50)
    vae.eval()
    assert torch.equal(vae.decode(z), vae.decode(z))
    vae.train()
    assert not torch.equal(vae.decode(z), vae.decode(z))


def test_elbo_terms_by_hand():
    # recon 0.5 everywhere: the Bernoulli NLL is 784 ln 2 whatever the binary image.
    x = (torch.arange(784) % 2).float().repeat(2, 1)
    recon = torch.full((2, 784), 0.5)
    # KL(N(mu, s^2) || N(0, 1)) = 0.5 (mu^2 + s^2 - 1 - ln s^2) per dimension.
    mu = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.0], [0.0, math.log(4.0)]])
    nll, kl = elbo_terms(recon, x, mu, logvar)
    assert torch.allclose(nll, torch.full((2,), 784 * math.log(2.0)))
    assert torch.allclose(kl, torch.tensor([0.0, 0.5 + 0.5 * (4 + 4 - 1 - math.log(4.0))]))


def test_vae_objective_scales_only_the_nll():
    torch.manual_seed(0)
    vae, x = VAE(4, hidden=(16, 8, 8)).eval(), torch.rand(6, 784)
    plain = evaluate(vae, VAEObjective(1.0), x, seed=3)
    scaled = evaluate(vae, VAEObjective(1000.0), x, seed=3)
    assert scaled["nll"] == pytest.approx(plain["nll"]) and scaled["kl"] == pytest.approx(plain["kl"])
    assert scaled["loss"] == pytest.approx(1000 * plain["nll"] + plain["kl"], rel=1e-5)
    assert plain["loss"] == pytest.approx(plain["nll"] + plain["kl"], rel=1e-5)


def test_classifier_shapes_and_layers():
    clf = Classifier().eval()
    x = torch.rand(4, 784)
    assert clf(x).shape == (4, 10) and clf.features(x).shape == (4, 200)
    convs = [m for name, m in clf.named_modules() if name.startswith("body.conv")]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (32, 3, 1), (32, 3, 1), (32, 2, 2), (64, 3, 1), (64, 2, 2)]


def test_classifier_learns_a_separable_set(tmp_path):
    """Bright top half vs bright bottom half, with noise: perfect after two short epochs."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(160) % 2
    images = torch.rand(160, 28, 28, generator=gen) * 0.3
    images[labels == 0, :14] += 0.6
    images[labels == 1, 14:] += 0.6
    images = images.reshape(160, 784).clamp(0, 1)
    train, val = (images[:128], labels[:128]), (images[128:], labels[128:])
    torch.manual_seed(0)
    clf = Classifier(n_classes=2)
    before = evaluate(clf, ClassifierObjective(), *val)["accuracy"]
    history = fit(clf, ClassifierObjective(), train, val, TrainSettings(epochs=2, batch_size=16), tmp_path / "clf.pt",
                  {"kind": "classifier"}, progress=False)
    after = evaluate(clf, ClassifierObjective(), *val)["accuracy"]
    assert before < 0.8 and after == 1.0 and history["val_accuracy"].max() == 1.0
