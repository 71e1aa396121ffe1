"""The paper's models (section 5 and 8.3): the MLP VAE and the CNN in-domain classifier.

Every layer is a named module, so any of them can be hooked by name
(e.g. ``"decoder.relu3"``, the decoder's 3rd hidden layer, 1000 units).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_DIM = 784
HIDDEN = (1000, 500, 250)
Z_DIM = {"mnist": 50, "fmnist": 50, "combined": 100}
DROPOUT = 0.10


def mlp(sizes: list[int], dropout: float) -> OrderedDict:
    """Named ``fc{i}`` -> ``relu{i}`` -> ``drop{i}`` blocks for each consecutive pair of ``sizes``."""
    layers = OrderedDict()
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers[f"fc{i}"] = nn.Linear(n_in, n_out)
        layers[f"relu{i}"] = nn.ReLU()
        layers[f"drop{i}"] = nn.Dropout(dropout)
    return layers


class VAE(nn.Module):
    """Encoder 784-1000-500-250 -> (mu, logvar) of size z; decoder z-250-500-1000-784 with sigmoid.

    Decoder hidden layers, in order from z: ``decoder.relu1`` (250), ``decoder.relu2`` (500),
    ``decoder.relu3`` (1000). Dropout 0.10 after each hidden layer, active in training only.
    """

    def __init__(self, z_dim: int = 50, hidden: tuple[int, ...] = HIDDEN, dropout: float = DROPOUT):
        super().__init__()
        self.z_dim, self.hidden = z_dim, tuple(hidden)
        self.encoder = nn.Sequential(mlp([IMAGE_DIM, *hidden], dropout))
        self.fc_mu = nn.Linear(hidden[-1], z_dim)
        self.fc_logvar = nn.Linear(hidden[-1], z_dim)
        decoder = mlp([z_dim, *reversed(hidden)], dropout)
        decoder["out"] = nn.Linear(hidden[0], IMAGE_DIM)
        decoder["sigmoid"] = nn.Sigmoid()
        self.decoder = nn.Sequential(decoder)

    @property
    def decoder_layers(self) -> list[str]:
        """Names of the decoder's hidden (post-ReLU) layers, from z outwards."""
        return [f"decoder.relu{i}" for i in range(1, len(self.hidden) + 1)]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.reshape(len(x), IMAGE_DIM))
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def config(self) -> dict:
        return {"z_dim": self.z_dim, "hidden": list(self.hidden)}


def elbo_terms(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example Bernoulli NLL (sum over pixels) and KL(q(z|x) || N(0, I)) (section 4, the ELBO)."""
    nll = F.binary_cross_entropy(recon, x.reshape_as(recon), reduction="none").sum(dim=1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    return nll, kl


class Classifier(nn.Module):
    """The in-domain CNN (section 8.3): conv 32 (3x3, s1), 32 (3x3, s1), 32 (2x2, s2), 64 (3x3, s1),
    64 (2x2, s2), a 200-unit fully connected layer, 10 outputs; ReLU, dropout 0.10.

    ``features(x)`` is the 200-unit layer's output: the feature space for FID.
    """

    def __init__(self, n_classes: int = 10, dropout: float = DROPOUT):
        super().__init__()
        convs = [(1, 32, 3, 1), (32, 32, 3, 1), (32, 32, 2, 2), (32, 64, 3, 1), (64, 64, 2, 2)]
        body = OrderedDict()
        for i, (c_in, c_out, k, s) in enumerate(convs, start=1):
            body[f"conv{i}"] = nn.Conv2d(c_in, c_out, k, stride=s)
            body[f"relu{i}"] = nn.ReLU()
        body["flatten"] = nn.Flatten()
        body["drop_conv"] = nn.Dropout(dropout)
        body["fc"] = nn.Linear(64 * 5 * 5, 200)
        body["relu_fc"] = nn.ReLU()
        self.body = nn.Sequential(body)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(200, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(len(x), 1, 28, 28))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.features(x)))

    def config(self) -> dict:
        return {"n_classes": self.out.out_features}
