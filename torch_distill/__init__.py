"""torch_distill: distilling reinforcement learning in PyTorch."""

__version__ = "0.1.0"
