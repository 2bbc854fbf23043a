"""rnnclf: train recurrent text classifiers from YAML configs."""

__version__ = "0.1.0"
