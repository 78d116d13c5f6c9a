"""Convergence (F8), adversarial robustness and explainability (F10): framework-free parts.

Two questions a reader must keep apart (issue 13):

* implementation agreement: from identical weights and batches, do the frameworks compute the
  same training, attacks and attributions? (the ``matched`` arm)
* the user's experience: do each framework's own defaults lead to different results? (the
  ``idiomatic`` arm)

``plan`` defines the runs and validates them, ``init`` makes the matched arm's initial weights
in NumPy, ``tables`` holds the Parquet schemas of curves and attributions, ``measures`` the
math that needs no framework (targets, time-to-accuracy, agreement, the IG quadrature),
``runs`` launches the isolated children and stores what they return, and ``child`` is what
those children run. The framework code lives in ``frameworks/<name>/convergence.py``.
"""
