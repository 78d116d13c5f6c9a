"""``python -m fwstudy``: run one trial, list workloads, check a workload's parity, check a
parameter file, run the notebooks over parameter files (``batch``), list what a run would
measure (``plan``), check that forked trials measure what fresh processes do (``isolation``).

Every bad input ends in one line on stderr naming the valid choices and exit status 2; the
parent process never imports a framework.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from collections.abc import Sequence
from typing import Any

from fwstudy.config.trial import (
    ALL_MODES,
    DEVICES,
    FRAMEWORKS,
    ISOLATIONS,
    PRECISIONS,
    TASKS,
    TrialConfig,
    check_cores,
    check_finite,
    modes_for,
)
from fwstudy.errors import BadInput, choices
from fwstudy.results.atomic import strict_json

OVERSUBSCRIBE_HELP = "allow more threads (workers x threads) than this host's logical cores"


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; the contract is one line and exit 2."""

    def error(self, message: str):  # type: ignore[override]
        raise BadInput(message)


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it is JSON (numbers, booleans), else a string."""
    if "=" not in text:
        raise BadInput(f"--param takes KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    check_finite(key.strip(), value)
    return key.strip(), value


def strict_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def strict_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):  # --timeout nan would mean no timeout at all
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from fwstudy.workloads import WORKLOADS

    parser = OneLineParser(prog="fwstudy", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True

    run = sub.add_parser("run", help="run one trial in an isolated subprocess")
    run.add_argument("--workload", required=True, help=f"one of: {choices(sorted(WORKLOADS))}")
    run.add_argument("--framework", required=True, help=f"one of: {choices(FRAMEWORKS)}")
    run.add_argument("--mode", required=True, help=f"one of: {choices(ALL_MODES)}")
    run.add_argument("--batch-size", type=strict_int, help="default: the workload's")
    run.add_argument("--steps", type=strict_int, default=30, help="timed steps (default 30)")
    run.add_argument("--warmup", type=strict_int, default=5, help="untimed steps (default 5)")
    run.add_argument("--threads", type=strict_int, help="intra-op threads (default: all cores)")
    run.add_argument("--interop-threads", type=strict_int, default=1)
    run.add_argument("--device", default="cpu", help=f"one of: {choices(DEVICES)}")
    run.add_argument(
        "--precision", default="fp32",
        help=f"one of: {choices(PRECISIONS)} (tf32: gpu only; bf16: mixed precision; default fp32)",
    )
    run.add_argument("--seed", type=strict_int, default=0)
    run.add_argument(
        "--isolation", default="process",
        help=f"one of: {choices(ISOLATIONS)} (fork: from a server that imported the framework; "
        "train and inference only; default process)",
    )
    run.add_argument("--timeout", type=strict_float, default=600.0, help="seconds (default 600)")
    run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="workload shape override"
    )
    run.add_argument("--task", default="train", help=f"one of: {choices(TASKS)} (default train)")
    run.add_argument(
        "--latency-calls", type=strict_int, default=200, help="batch-1 calls of an inference trial"
    )
    run.add_argument(
        "--gemm-size", type=strict_int, default=1024, help="GEMM size of the MFU peak (default 1024)"
    )
    run.add_argument("--json", action="store_true", help="print exactly one JSON record")
    run.add_argument("--oversubscribe", action="store_true", help=OVERSUBSCRIBE_HELP)
    from fwstudy.harness.distributed import cli_options as distributed_options

    distributed_options.add_arguments(run)

    sub.add_parser("list", help="list workloads with shapes, parameter counts and modes")

    parity = sub.add_parser(
        "parity", help="prove a workload's two twins compute the same (rule 6); exit 0 only on pass"
    )
    parity.add_argument("--workload", required=True, help=f"one of: {choices(sorted(WORKLOADS))}")
    parity.add_argument("--batch-size", type=strict_int, help="default: the workload's")
    parity.add_argument(
        "--steps", type=strict_int, default=0, help="also compare the losses of N Adam steps"
    )
    parity.add_argument(
        "--data",
        help="synthetic or dataset (default: dataset with --steps, i.e. digits for mlp and cnn "
        "and the token task for lstm and transformer; synthetic default shapes otherwise)",
    )
    parity.add_argument(
        "--source", default="torch", help="the framework whose initial weights both use (default torch)"
    )
    parity.add_argument("--seed", type=strict_int, default=0)
    parity.add_argument("--threads", type=strict_int, help="intra-op threads (default: all cores)")
    parity.add_argument("--timeout", type=strict_float, default=600.0, help="seconds per child")
    parity.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="workload shape override"
    )
    parity.add_argument(
        "--modes", action="store_true",
        help="also check that every execution mode of each framework agrees with its eager mode",
    )
    parity.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parity.add_argument("--oversubscribe", action="store_true", help=OVERSUBSCRIBE_HELP)
    parity.add_argument("--break", dest="break_side", help=argparse.SUPPRESS)  # tests: fail on purpose

    check = sub.add_parser("check-profile", help="validate a papermill parameter file")
    check.add_argument("path")

    batch = sub.add_parser(
        "batch", help="run the notebooks over parameter files with papermill (resumable; "
        "notebooks whose inputs are unchanged are not executed again)",
    )
    batch.add_argument("--params", nargs="+", required=True, metavar="FILE",
                       help="parameter files (or profile names), e.g. parameters/quick.yaml")
    batch.add_argument("--notebooks", nargs="*", metavar="NOTEBOOK",
                       help="notebook paths or names (default: every notebook in notebooks/)")
    batch.add_argument("--force", action="store_true", help="execute every notebook and measure every trial again")
    batch.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="send the trials to this Dask scheduler (default: $FWSTUDY_SCHEDULER, "
                       "else the profile's scheduler, else run here)")

    plan = sub.add_parser("plan", help="list the trials a run of the notebooks would measure, with estimated times")
    plan.add_argument("--profile", required=True, help="a profile in parameters/ or a path to a YAML file")

    isolation = sub.add_parser(
        "isolation", help="the A-vs-A isolation check: every training configuration of a profile "
        "forked from a warm server and in a fresh process, in paired blocks; medians, ratio, intervals",
    )
    isolation.add_argument("--profile", default="quick", help="a profile in parameters/ or a YAML file (default quick)")
    isolation.add_argument("--workloads", nargs="+", metavar="WORKLOAD", help="default: the profile's")
    isolation.add_argument("--blocks", type=strict_int, help="paired blocks (default: the profile's repeats)")

    return parser


def config_from_args(args: argparse.Namespace) -> TrialConfig:
    options: dict[str, Any] = {
        "workload": args.workload,
        "framework": args.framework,
        "mode": args.mode,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "interop_threads": args.interop_threads,
        "device": args.device,
        "precision": args.precision,
        "isolation": args.isolation,
        "seed": args.seed,
        "timeout_s": args.timeout,
        "workload_params": dict(parse_param(p) for p in args.param),
        "task": args.task,
        "latency_calls": args.latency_calls,
    }
    if args.threads is not None:
        options["threads"] = args.threads
    from fwstudy.harness.distributed import cli_options as distributed_options

    distributed_options.apply(args, options)
    config = TrialConfig(**options)
    plan_threads(config, args.oversubscribe)
    return config


def plan_threads(config: TrialConfig, oversubscribe: bool) -> None:
    """This host's share of the trial's threads: ``threads``, or its workers x their threads."""
    from fwstudy.harness.distributed.plan import LaunchOptions, make_plan

    check_cores("--threads", config.threads, oversubscribe=oversubscribe)
    if config.workers > 1:
        plan = make_plan(config, LaunchOptions.from_environment())
        if config.device == "gpu":
            from fwstudy.harness.gpu import check_gpu_count

            check_gpu_count(plan.local_workers, f"--workers {config.workers}")
        check_cores(
            f"--workers {config.workers} ({plan.local_workers} here x {plan.threads_per_worker} threads)",
            plan.local_workers * plan.threads_per_worker, oversubscribe=oversubscribe,
        )


def summary_line(record: dict[str, Any]) -> str:
    head = (
        f"{record['framework']} {record['workload']} {record['mode']} "
        f"batch={record['batch_size']} threads={record['threads']}: {record['status']}"
    )
    if record["status"] != "ok":
        return f"{head}\n{record['error']}"
    m = record["metrics"]
    line = (
        f"{head}  step {m['step_time_ms_median']:.3f} ms (median)  "
        f"{m['throughput_samples_per_s']:.0f} samples/s  compile {m['compile_s']:.2f} s  "
        f"peak RSS {m['peak_rss_mb']:.0f} MiB  params {m['params']}"
    )
    if "peak_anon_above_import_mb" in m:
        line += f"  anon +{m['peak_anon_above_import_mb']:.0f} MiB"
        if "compile_peak_anon_above_import_mb" in m:
            line += f" (compile +{m['compile_peak_anon_above_import_mb']:.0f})"
    if "mfu" in m:
        line += f"  MFU {m['mfu']:.1%} of {m['gemm_peak_gflops']:.0f} GFLOP/s"
    if "latency_ms_p99_ci_low" in m:
        line += (f"  p99 {m['latency_ms_p99']:.3f} ms [{m['latency_ms_p99_ci_low']:.3f}, "
                 f"{m['latency_ms_p99_ci_high']:.3f}] at {m['latency_ms_p99_ci_confidence']:.0%}")
    return line


def cmd_run(args: argparse.Namespace) -> int:
    from fwstudy.harness.lifeline import sweep_stale
    from fwstudy.harness.runner import run_trial

    config = config_from_args(args)
    sweep_stale()  # folders of earlier runs killed between children
    print(f"fwstudy: running {config.label()} in a fresh process ...", file=sys.stderr)
    if args.gemm_size < 1:
        raise BadInput(f"gemm_size must be >= 1, got {args.gemm_size}")
    record = run_trial(config, gemm_size=args.gemm_size)
    if args.json:
        print(strict_json(record))
    else:
        print(summary_line(record))
    return 0 if record["status"] == "ok" else 1


def cmd_parity(args: argparse.Namespace) -> int:
    from fwstudy.parity.gate import ParityRequest, run_parity
    from fwstudy.parity.report import summary_text

    options: dict[str, Any] = {
        "workload": args.workload,
        "params": dict(parse_param(p) for p in args.param),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "data": args.data,
        "source": args.source,
        "seed": args.seed,
        "timeout_s": args.timeout,
        "break_side": args.break_side,
        "modes": args.modes,
    }
    if args.threads is not None:
        check_cores("--threads", args.threads, oversubscribe=args.oversubscribe)
        options["threads"] = args.threads
    request = ParityRequest(**options)
    request.resolve()  # bad input fails here, before any child starts
    print(f"fwstudy: parity of {args.workload}: one child per framework ...", file=sys.stderr)
    report = run_parity(request)
    if args.json:
        print(strict_json(report))
    else:
        print(summary_text(report))
    return 0 if report["passed"] else 1


def cmd_list() -> int:
    from fwstudy.workloads import WORKLOADS

    for name in sorted(WORKLOADS):
        spec = WORKLOADS[name]
        params = spec.resolve_params({})
        modes = "; ".join(f"{fw}: {', '.join(modes_for(fw, name))}" for fw in FRAMEWORKS)
        print(
            f"{name:12s} {spec.describe()}, batch {spec.default_batch_size}, "
            f"{spec.param_count(params):,} params  [{modes}]"
        )
    return 0


def cmd_check_profile(path: str) -> int:
    from fwstudy.config.profile import load_profile_file

    profile = load_profile_file(path)
    print(f"{path}: profile {profile.profile!r} is valid")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 ok, 1 a trial or parity check failed, 2 bad input, 130 Ctrl-C, 128+N
    another terminating signal N (SIGTERM, SIGHUP), each with one line on stderr."""
    from fwstudy.harness.lifeline import Terminated, terminate_on_signals

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with terminate_on_signals():
            return dispatch(argv)
    except KeyboardInterrupt:
        print("fwstudy: interrupted (SIGINT): the running child was stopped, nothing of it was saved", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated as exc:
        print(f"fwstudy: terminated ({exc}): the running child was stopped, nothing of it was saved", file=sys.stderr)
        return 128 + exc.signum


def dispatch(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "list":
            return cmd_list()
        if args.command == "parity":
            return cmd_parity(args)
        if args.command == "check-profile":
            return cmd_check_profile(args.path)
        if args.command == "batch":
            from fwstudy.pipeline import execute

            return execute.run(args.params, args.notebooks, force=args.force, scheduler=args.scheduler)
        if args.command == "plan":
            from fwstudy.pipeline import plan

            return plan.report(args.profile)
        if args.command == "isolation":
            from fwstudy.harness import isolation

            return isolation.report(args.profile, args.workloads, args.blocks)
    except BadInput as exc:
        print(f"fwstudy: error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(args.command)  # pragma: no cover
