"""Methods for gac-bench: training-free references (identity, depth-warp) and adapters for published models."""
