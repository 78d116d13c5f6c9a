"""Harness-overhead benchmark: does the runner's measured loop cost more than a bare loop?

For each framework, workload and mode, one child process (one framework) builds the model once
and alternates blocks of a hand-written training loop (one sync at the end) with blocks of the
runner's measured loop (a clock read and a host sync of the loss per step). The target is
<= 3%. This is a benchmark to run and report, not a timed test: shared machines are noisy.

    python -m fwstudy.overhead [--workloads mlp cnn] [--steps 50] [--blocks 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from fwstudy.config import FRAMEWORKS, TrialConfig, default_threads, modes_for
from fwstudy.errors import BadInput
from fwstudy.isolation import run_child
from fwstudy.results import atomic_write_text
from fwstudy.runner import child_environment

TARGET_PCT = 3.0


def measure(config: TrialConfig, blocks: int, timeout_s: float = 900) -> dict:
    with tempfile.TemporaryDirectory(prefix="fwstudy-overhead-") as tmp:
        out = Path(tmp, "overhead.json")
        args = json.dumps({"config": config.to_dict(), "blocks": blocks})
        outcome = run_child(
            [sys.executable, "-m", "fwstudy.overhead", "--child", args, str(out)],
            timeout_s=timeout_s, env=child_environment(config),
        )
        if not out.exists():
            return {"error": f"{outcome.describe()}: {outcome.output_tail[-300:]}"}
        return json.loads(out.read_text())


def _child(args_json: str, out_path: str) -> int:
    from fwstudy.backends import load_backend
    from fwstudy.workloads import get_workload

    args = json.loads(args_json)
    config = TrialConfig.from_dict(args["config"])
    backend = load_backend(config.framework)
    try:
        result = backend.overhead(config, get_workload(config.workload), args["blocks"])
    except Exception as exc:  # reported in the table, the benchmark goes on
        result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    atomic_write_text(Path(out_path), json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    from fwstudy.workloads import WORKLOADS

    parser = argparse.ArgumentParser(prog="python -m fwstudy.overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=sorted(WORKLOADS))
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS))
    parser.add_argument("--modes", nargs="+", default=["eager", "graph", "compiled"])
    parser.add_argument("--steps", type=int, default=50, help="steps per block")
    parser.add_argument("--blocks", type=int, default=5, help="alternating blocks per loop")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(*args.child)
    rows = []
    try:
        configs = [
            TrialConfig(workload=w, framework=f, mode=m, steps=args.steps, warmup=5, threads=args.threads)
            for w in args.workloads for m in args.modes for f in args.frameworks
            if m in modes_for(f, w)
        ]
    except BadInput as exc:
        print(f"fwstudy.overhead: error: {exc}", file=sys.stderr)
        return 2
    print(f"{'framework':11s} {'workload':12s} {'mode':9s} {'bare ms':>9s} {'harness ms':>11s} {'overhead':>9s}")
    for config in configs:
        result = measure(config, args.blocks)
        rows.append({"framework": config.framework, "workload": config.workload, "mode": config.mode, **result})
        if "error" in result:
            print(f"{config.framework:11s} {config.workload:12s} {config.mode:9s} failed: {result['error']}")
            continue
        flag = "" if result["overhead_pct"] <= TARGET_PCT else f"  > {TARGET_PCT:g}% target"
        print(f"{config.framework:11s} {config.workload:12s} {config.mode:9s} {result['bare_step_ms']:9.3f} "
              f"{result['harness_step_ms']:11.3f} {result['overhead_pct']:8.2f}%{flag}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
