"""LSTM classifier: tokens (vocab 1000, length 50) → embedding 64 → LSTM 128 → last state → 10."""
