"""One hook utility: read or replace the output of any ``nn.Module`` layer, addressed by its dotted name.

    with edit_layer(vae, "decoder.relu3", edit):   # edit: tensor -> tensor of the same shape
        images = vae.decode(z)

    h = layer_output(vae, "decoder.relu3", z, forward=vae.decode)   # runs the model only up to the layer

The hook is registered for the span of the ``with`` block and removed on exit, also when the block
raises. The interface follows baukit's ``nethook.Trace`` (``edit_output``, ``stop``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn


class StopForward(Exception):
    """Raised by a recording hook to end a forward pass once the layer of interest has run."""


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (e.g. ``"decoder.relu3"``); an unknown name lists the valid ones."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        shown = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
        raise KeyError(f"{type(model).__name__} has no layer {name!r}; valid layer names: {shown}")
    return modules[name]


@contextmanager
def output_hook(model: nn.Module, layer: str, fn: Callable[[torch.Tensor], torch.Tensor | None]):
    """Call ``fn(output)`` after ``layer`` runs; a tensor it returns replaces the output.

    The hook is removed when the block ends, whether normally or by an exception.
    """
    module = get_module(model, layer)

    def hook(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"layer {layer!r} returns {type(output).__name__}, not a tensor: hook a layer "
                            "whose output is one tensor")
        return fn(output)

    handle = module.register_forward_hook(hook)
    try:
        yield module
    finally:
        handle.remove()


@contextmanager
def edit_layer(model: nn.Module, layer: str, edit: Callable[[torch.Tensor], torch.Tensor]):
    """Replace ``layer``'s output by ``edit(output)`` inside the block (section 4: "this modified layer
    output is then passed through the remainder of the decoder")."""

    def replace(output: torch.Tensor) -> torch.Tensor:
        edited = edit(output)
        if not isinstance(edited, torch.Tensor) or edited.shape != output.shape:
            got = tuple(edited.shape) if isinstance(edited, torch.Tensor) else type(edited).__name__
            raise ValueError(f"the edit of layer {layer!r} must return a tensor of shape {tuple(output.shape)}, "
                             f"got {got}")
        return edited

    with output_hook(model, layer, replace):
        yield


class LayerRecord:
    """What :func:`record_layer` keeps: the layer's last output (detached)."""

    output: torch.Tensor | None = None


@contextmanager
def record_layer(model: nn.Module, layer: str, stop: bool = False):
    """Keep ``layer``'s output in ``record.output``; with ``stop=True`` the forward pass ends right after
    the layer (the ``StopForward`` it raises is swallowed when it reaches this block)."""
    record = LayerRecord()

    def keep(output: torch.Tensor) -> None:
        record.output = output.detach()
        if stop:
            raise StopForward

    try:
        with output_hook(model, layer, keep):
            yield record
    except StopForward:
        pass


@torch.no_grad()
def layer_output(model: nn.Module, layer: str, x: torch.Tensor, forward: Callable | None = None) -> torch.Tensor:
    """``layer``'s output for input ``x``, running ``forward`` (default: ``model``) only up to that layer."""
    with record_layer(model, layer, stop=True) as record:
        (forward or model)(x)
    if record.output is None:
        raise RuntimeError(f"layer {layer!r} did not run during the forward pass: pass the forward function "
                           "that goes through it (e.g. forward=vae.decode)")
    return record.output
