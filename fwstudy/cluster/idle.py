"""What an idle Dask worker costs the host it shares with a trial:
``python -m fwstudy.cluster.idle [SECONDS]`` (default 30).

A worker's event loop (heartbeats to the scheduler, its own monitoring) runs beside the
trial's child on the same cores, so it is noise in every timing a cluster run makes. This
starts a scheduler and one worker as the README starts them (one process, one thread,
``machine=1``, a nanny), lets them settle, and reads the CPU time of the worker process and of
its nanny over the window with psutil. Printed: CPU % of one core for each, and the total.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTLE_S = 10.0


def _cpu_s(proc) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def measure(seconds: float = 30.0) -> dict[str, float]:
    import psutil

    dask = str(Path(sys.executable).parent / "dask")
    with tempfile.TemporaryDirectory(prefix="fwstudy-idle-") as tmp:
        file = Path(tmp, "scheduler.json")
        sessions = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(file)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)]
        try:
            deadline = time.monotonic() + 60
            while not file.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            address = json.loads(file.read_text())["address"]
            sessions.append(subprocess.Popen(
                [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--resources", "machine=1",
                 "--no-dashboard", "--local-directory", tmp], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True))
            time.sleep(SETTLE_S)  # imports and registration are start-up, not idling
            nanny = psutil.Process(sessions[1].pid)
            # The nanny's children: the worker (multiprocessing's spawn) and a resource tracker.
            workers = [c for c in nanny.children() if "spawn_main" in " ".join(c.cmdline())]
            if not workers:
                raise RuntimeError("the worker process did not start")
            worker = workers[0]
            before = {"worker": _cpu_s(worker), "nanny": _cpu_s(nanny)}
            start = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - start
            after = {"worker": _cpu_s(worker), "nanny": _cpu_s(nanny)}
        finally:
            for proc in reversed(sessions):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
    usage = {name: 100 * (after[name] - before[name]) / elapsed for name in before}
    usage["total"] = usage["worker"] + usage["nanny"]
    usage["seconds"] = elapsed
    return usage


def main(argv: list[str]) -> int:
    seconds = float(argv[0]) if argv else 30.0
    usage = measure(seconds)
    print(f"idle Dask worker over {usage['seconds']:.0f} s: worker process {usage['worker']:.2f} % of one core, "
          f"nanny {usage['nanny']:.2f} %, total {usage['total']:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
