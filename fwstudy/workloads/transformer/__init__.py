"""Transformer encoder classifier: tokens (vocab 1000, length 64) → embedding 128 + learned
positions → 2 post-norm encoder layers (4 heads, ff 512) → mean pool → 10."""
