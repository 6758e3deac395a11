"""Reports, figures and image grids, and their W&B copies."""
