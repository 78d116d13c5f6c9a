"""Scale-out on Dask distributed: the trials of a batch sent to a cluster instead of run here.

Why Dask: pure Python, and the same client API whether the scheduler runs on this laptop,
over SSH, under Slurm (dask-jobqueue) or on Kubernetes. The study asks three things of it:

* **A timing trial owns its machine.** Dask resources belong to a worker *process*, so each
  host runs exactly one worker with one thread, advertising ``--resources machine=1`` (a GPU
  host also ``gpu=1``), and every trial asks for ``machine=1`` (a GPU trial also ``gpu=1``).
* **Each trial still runs in a fresh process** on the worker, through the same harness as a
  local run (``harness.runner.run_trial``: lifeline, timeout, failure records); only its
  record travels back, and the client stores it (``results.store``: atomic writes), so the
  hosts share no file system.
* **Nothing is lost when a worker dies.** Dask reschedules a dead worker's task on another
  worker; after ``distributed.scheduler.allowed-failures`` deaths it gives up and the trial
  is recorded as failed with that reason. The trial's child dies with its worker (its
  lifeline), so no process is left behind.

Without a scheduler address everything runs locally, as before: that is the default.
``client`` is the batch's side; ``task`` is what runs on a worker.
"""
