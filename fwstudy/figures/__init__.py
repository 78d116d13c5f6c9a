"""One module per figure of the study, each with the same shape:

* ``configs(profile)``: the trials the figure needs, derived from the profile alone;
* ``analyse(table)``: the numbers it shows, from the tidy results table only (testable
  without plotting);
* ``draw(...)``: the matplotlib figure, no statistics;
* ``NAME``: the file name under ``figures/<profile>/``.

``common`` holds what figures share (caption, panels, the record of the numbers drawn, and
saving: PNG with provenance metadata, SVG, CSV of the numbers), ``palette`` the colours and
line styles every figure uses, and ``trials`` the grid of trials several figures read.
"""

import matplotlib

matplotlib.use("Agg")  # figures are files first; JupyterLab still displays the returned Figure
