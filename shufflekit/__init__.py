"""shufflekit: ShuffleNet v1/v2 from PyTorch to phones and boards, with every number measured."""

__version__ = "0.1.0"
