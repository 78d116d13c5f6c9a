"""Batch runs of the notebooks: papermill over notebooks × parameter files (``make batch``,
``make figures``), skipping a notebook whose inputs are unchanged, and ``fwstudy plan``.

Why a package of its own: it drives the notebooks from outside (the parent of their kernels)
and decides what runs, never how a trial measures; nothing here is measuring code, so changing
it never invalidates a stored trial (``harness.environment.MEASURING_CODE``). It imports no
framework: a no-op ``make figures`` must stay a matter of seconds.
"""
