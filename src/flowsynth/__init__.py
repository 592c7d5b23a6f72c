"""flowsynth: deep learning to understand and control audio synthesizers."""

__all__ = ["__version__"]

__version__ = "0.1.0"
