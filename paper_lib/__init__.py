"""paper_lib: the thin, importable core of the creative-decoder notebook suite.

Das, Quanz et al., "Toward a Neuro-Inspired Creative Decoder". One small module per concern:
config (profiles, paths, device), data (offline MNIST / Fashion-MNIST), models, train,
neurons (per-neuron statistics), decoding (creative decoding schemes and the hook that applies
them), metrics (novelty), study (human annotation), plots and report.
"""

__version__ = "0.1.0"
