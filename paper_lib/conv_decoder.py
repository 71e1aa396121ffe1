"""A second generator, not the paper's MLP VAE: a small convolutional VAE, to show that the decoding schemes
run unchanged on any ``nn.Module`` layer (the paper's CelebA VAE and ArtGAN are convolutional, section 8.6).

Decoder: z -> ``fc`` (64 x 7 x 7) -> ``relu0`` -> ``deconv1`` (64 x 14 x 14) -> ``relu1`` -> ``deconv2``
(1 x 28 x 28) -> ``sigmoid`` -> ``flatten`` (784). ``decoder.relu1`` is a conv layer whose units are its 64
channels (see :mod:`paper_lib.neurons`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from tqdm.auto import tqdm

from .models import IMAGE_DIM, elbo_terms

CHANNELS = 64


class ConvVAE(nn.Module):
    """Conv encoder 1x28x28 -> 32x14x14 -> 64x7x7 -> (mu, logvar); the mirror transposed-conv decoder."""

    def __init__(self, z_dim: int = 16, channels: int = CHANNELS):
        super().__init__()
        self.z_dim, self.channels = z_dim, channels
        self.encoder = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(1, 32, 4, stride=2, padding=1), relu1=nn.ReLU(),
            conv2=nn.Conv2d(32, channels, 4, stride=2, padding=1), relu2=nn.ReLU(), flatten=nn.Flatten(),
        ))
        self.fc_mu = nn.Linear(channels * 49, z_dim)
        self.fc_logvar = nn.Linear(channels * 49, z_dim)
        self.decoder = nn.Sequential(OrderedDict(
            fc=nn.Linear(z_dim, channels * 49), relu0=nn.ReLU(), unflatten=nn.Unflatten(1, (channels, 7, 7)),
            deconv1=nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1), relu1=nn.ReLU(),
            deconv2=nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1), sigmoid=nn.Sigmoid(),
            flatten=nn.Flatten(),
        ))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.reshape(len(x), 1, 28, 28))
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)), mu, logvar


def train_conv_vae(model: ConvVAE, images: torch.Tensor, epochs: int = 2, batch: int = 128, lr: float = 1e-3,
                   generator: torch.Generator | None = None) -> list[float]:
    """A few epochs of Adam on the ELBO (Bernoulli NLL + KL); returns the mean loss per epoch. Leaves eval mode."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for epoch in range(epochs):
        order, total = torch.randperm(len(images), generator=generator), 0.0
        for start in tqdm(range(0, len(images), batch), desc=f"conv VAE epoch {epoch + 1}/{epochs}", leave=False):
            x = images[order[start:start + batch]].to(device).reshape(-1, IMAGE_DIM)
            recon, mu, logvar = model(x)
            nll, kl = elbo_terms(recon, x, mu, logvar)
            loss = (nll + kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(x)
        losses.append(total / len(images))
    model.eval()
    return losses
