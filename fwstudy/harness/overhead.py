"""Harness-overhead benchmark: does the runner's measured loop cost more than a bare loop?

For each framework, workload and mode, one child process (one framework) builds the model once
and alternates blocks of a hand-written training loop (one sync at the end) with blocks of the
runner's measured loop (a clock read and a host sync of the loss per step), in ABBA order. The
target is <= 3%: blocks go on until the interval of the median paired ratio (distribution-free,
at ``--confidence``) is narrower than 3 percentage points, or ``--max-blocks`` pairs have run;
the table gives that interval per framework, workload and mode, and says whether it lies under
the target. Where the framework's trial reports a peer tool's time for the same step
(``peer_step_ms``: PyTorch's ``torch.utils.benchmark.Timer``), it is printed beside them, so
the harness loop is compared with a bare loop *and* with an established benchmarking tool.
This is a benchmark to run and report, not a timed test: shared machines are noisy.

    python -m fwstudy.harness.overhead [--workloads mlp cnn] [--steps 50] [--blocks 6]
        [--max-blocks 60] [--confidence 0.95] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fwstudy.config.trial import FRAMEWORKS, TrialConfig, default_threads, modes_for
from fwstudy.errors import BadInput, error_text
from fwstudy.harness import process
from fwstudy.harness.lifeline import owned_tempdir
from fwstudy.results.atomic import atomic_write_text

TARGET_PCT = 3.0


def measure(config: TrialConfig, blocks: int, timeout_s: float = 1800, **options) -> dict:
    job = {"kind": "overhead", "config": config.to_dict(), "blocks": blocks, "options": options}
    with owned_tempdir("overhead") as tmp:
        outcome, result = process.run_job(
            job, timeout_s=timeout_s, env=process.child_environment(config), workdir=Path(tmp)
        )
    if result is None:
        return {"error": f"{outcome.describe()}: {outcome.output_tail[-300:]}"}
    return result


def run_job(job: dict) -> int:
    """Inside the child (job kind ``overhead``): one framework, one configuration."""
    from fwstudy import frameworks
    from fwstudy.workloads import get_workload

    config = TrialConfig.from_dict(job["config"])
    try:
        trial = frameworks.load(config.framework, "trial")
        result = trial.overhead(config, get_workload(config.workload), job["blocks"], **job.get("options", {}))
    except Exception as exc:  # reported in the table, the benchmark goes on
        result = {"error": error_text(exc)}
    atomic_write_text(Path(job["out"]), json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    from fwstudy.workloads import WORKLOADS

    parser = argparse.ArgumentParser(prog="python -m fwstudy.harness.overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=sorted(WORKLOADS))
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS))
    parser.add_argument("--modes", nargs="+", default=["eager", "graph", "compiled"])
    parser.add_argument("--steps", type=int, default=50, help="steps per block")
    parser.add_argument("--blocks", type=int, default=6, help="paired blocks at least")
    parser.add_argument("--max-blocks", type=int, default=60,
                        help="paired blocks at most, while the interval is wider than the target")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args(argv)
    try:
        if not 0 < args.confidence < 1:
            raise BadInput(f"--confidence must be between 0 and 1, got {args.confidence}")
        if args.blocks < 2 or args.max_blocks < args.blocks:
            raise BadInput(f"need 2 <= --blocks <= --max-blocks, got {args.blocks} and {args.max_blocks}")
        configs = [
            TrialConfig(workload=w, framework=f, mode=m, steps=args.steps, warmup=5, threads=args.threads)
            for w in args.workloads for m in args.modes for f in args.frameworks
            if m in modes_for(f, w)
        ]
    except BadInput as exc:
        print(f"fwstudy.harness.overhead: error: {exc}", file=sys.stderr)
        return 2
    print(f"{'framework':11s} {'workload':12s} {'mode':9s} {'bare ms':>9s} {'harness ms':>11s} "
          f"{'peer ms':>9s} {'overhead':>9s} {'interval':>19s} {'blocks':>6s} {'peer/bare':>10s}")
    for config in configs:
        result = measure(config, args.blocks, max_blocks=args.max_blocks,
                         target_width_pct=TARGET_PCT, confidence=args.confidence)
        print(format_row(config, result), flush=True)
    return 0


def format_row(config: TrialConfig, result: dict) -> str:
    """One line: bare loop, harness loop and peer tool side by side (peer "-" where the
    framework has none), the harness's overhead over the bare loop and the peer's."""
    head = f"{config.framework:11s} {config.workload:12s} {config.mode:9s}"
    if "error" in result:
        return f"{head} failed: {result['error']}"
    bare, peer = result["bare_step_ms"], result.get("peer_step_ms")
    peer_text = f"{peer:9.3f}" if peer else f"{'-':>9s}"
    peer_pct = f"{(peer / bare - 1) * 100:9.2f}%" if peer else f"{'-':>10s}"
    return (f"{head} {bare:9.3f} {result['harness_step_ms']:11.3f} {peer_text} "
            f"{result['overhead_pct']:8.2f}% {interval_text(result):>19s} {result.get('blocks', 0):6d} "
            f"{peer_pct}  {verdict(result)}")


def interval_text(result: dict) -> str:
    low, high = result.get("overhead_ci_low_pct"), result.get("overhead_ci_high_pct")
    if low is None or low != low:
        return "-"
    return f"[{low:.2f}, {high:.2f}]% {100 * result['overhead_ci_confidence']:.0f}%"


def verdict(result: dict) -> str:
    """Met only when the whole interval is under the target (at the confidence it reached);
    missed when the whole interval is over it; else undecided (more blocks, or a quieter host)."""
    low, high = result.get("overhead_ci_low_pct"), result.get("overhead_ci_high_pct")
    if low is None or low != low:
        return "no interval"
    if high <= TARGET_PCT:
        return f"<= {TARGET_PCT:g}%: met"
    if low > TARGET_PCT:
        return f"> {TARGET_PCT:g}%: missed"
    return "undecided"


if __name__ == "__main__":
    raise SystemExit(main())
