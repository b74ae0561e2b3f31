"""``shufflekit sweep``: speed against FLOPs across every variant, on every device (issue 14; the ShuffleNet
v2 paper's Figure 1 c/d and Table 8, measured here)."""

from .run import SweepOptions, SweepReport, run_sweep
from .variants import parse_list, select_variants

__all__ = ["SweepOptions", "SweepReport", "parse_list", "run_sweep", "select_variants"]
