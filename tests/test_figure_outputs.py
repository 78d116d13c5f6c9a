"""What every saved figure carries (issue 15): the CSV of the numbers it plots beside the PNG,
PNG metadata naming its profile, commit and date, labels that do not overlap, and the same
colours in every figure (``figures/palette.py``)."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from fwstudy.figures import common, graph_modes, palette, training_speed  # noqa: E402
from fwstudy.results import stats  # noqa: E402
from tests.conftest import PROJECT  # noqa: E402
from tests.test_figures import FIRST, SECOND, table  # noqa: E402

FIGURE_MODULES = sorted(p.stem for p in (PROJECT / "fwstudy" / "figures").glob("*.py")
                        if p.stem not in ("__init__", "common", "palette", "trials"))


def numbers_of(fig) -> pd.DataFrame:
    numbers = common.plotted_numbers(fig)
    assert list(numbers.columns[:1]) == ["panel"] and list(numbers.columns[-2:]) == ["quantity", "value"]
    return numbers


def test_save_writes_png_svg_and_the_csv_of_the_numbers_drawn(tmp_path):
    data = table()
    fig = training_speed.draw(data)
    paths = common.save_figure(fig, tmp_path / "anywhere", training_speed.NAME, profile="quick")
    assert [p.name for p in paths] == ["training_speed.png", "training_speed.svg", "training_speed.csv"]
    csv = pd.read_csv(paths[2])
    # The bars: each median as summarize_configurations computes it, one row per configuration.
    bars = csv[csv["quantity"] == "median"].set_index(["workload", "framework", "mode"])["value"]
    summary = stats.summarize_configurations(data).set_index(["workload", "framework", "mode"])["median"]
    assert len(bars) == len(summary) == 8
    for key, median in summary.items():
        assert bars.loc[key] == pytest.approx(median)
    # The dots: every trial.
    dots = csv[csv["quantity"] == "trial"]
    assert len(dots) == data.loc[data["metric"] == "step_time_ms_median", "trial_id"].nunique()
    # The ratio panel: the ratios of the paired blocks, best mode included.
    ratios = csv[csv["quantity"] == "ratio"].set_index(["workload", "mode"])["value"]
    expected = common.ratio_table(data, best=True).set_index(["workload", "mode"])["ratio"]
    assert len(ratios) == len(expected) and np.allclose(ratios.loc[expected.index], expected)


def test_png_metadata_names_profile_commit_code_version_and_date(tmp_path):
    from fwstudy.harness.environment import code_version

    fig = training_speed.draw(table(workloads=(FIRST,)))
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    png = common.save_figure(fig, tmp_path / "smoke", training_speed.NAME, profile="quick")[0]
    meta = common.read_png_metadata(png)
    assert meta["Profile"] == "quick"  # the argument, not the folder's name
    assert meta["Code-Version"] == code_version()
    assert re.fullmatch(r"[0-9a-f]{7,}(-dirty)?|.+-g[0-9a-f]{7,}(-dirty)?|unknown", meta["Commit"]), meta["Commit"]
    drawn = datetime.datetime.strptime(meta["Date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    assert before <= drawn <= before + datetime.timedelta(minutes=5)
    assert meta["Title"] == training_speed.NAME and meta["Numbers"] == "training_speed.csv"
    # Without a profile, the folder names it (figures/<profile>/).
    fig = training_speed.draw(table(workloads=(FIRST,)))
    png = common.save_figure(fig, tmp_path / "smoke", training_speed.NAME)[0]
    assert common.read_png_metadata(png)["Profile"] == "smoke"


def test_a_figure_that_drew_no_numbers_says_so(tmp_path):
    """Every trial failed: the panels say so, the CSV is its header alone, the PNG says none
    were drawn (the notebook still saves what it has)."""
    data = table(workloads=(FIRST,))
    data["status"] = "failed"
    fig = training_speed.draw(data)
    png, _, csv = common.save_figure(fig, tmp_path, training_speed.NAME, profile="quick")
    assert pd.read_csv(csv).empty and list(pd.read_csv(csv).columns) == ["panel", "quantity", "value"]
    assert common.read_png_metadata(png)["Numbers"] == "training_speed.csv: none drawn"


def _boxes(ax, renderer):
    """Display-space boxes of the whiskers (each segment), caps, markers and reference lines."""
    boxes = []
    for collection in ax.collections:
        if isinstance(collection, LineCollection):
            for segment in collection.get_segments():
                points = ax.transData.transform(segment)
                boxes.append(matplotlib.transforms.Bbox([points.min(axis=0), points.max(axis=0)]))
        else:
            boxes.append(collection.get_window_extent(renderer))
    boxes += [line.get_window_extent(renderer) for line in ax.lines]
    return boxes


def _overlap(a, b, pad=0.5) -> bool:
    return a.x0 < b.x1 - pad and b.x0 < a.x1 - pad and a.y0 < b.y1 - pad and b.y0 < a.y1 - pad


@pytest.mark.parametrize("intervals", ["narrow", "wide"])
def test_ratio_labels_overlap_no_whisker_no_line_and_no_other_label(intervals):
    """F1/F5/F8's ratio panels: a label beside each row, clear of every whisker (however wide
    its interval), of the line at 1, of the other labels and of the tick labels; inside the
    saved figure."""
    data = table(workloads=(FIRST, SECOND))
    if intervals == "wide":  # noisy trials: long whiskers reaching the label column's side
        gen = np.random.default_rng(3)
        step = data["metric"] == "step_time_ms_median"
        data.loc[step, "value"] *= np.exp(gen.normal(0, 0.8, step.sum()))
    fig = training_speed.draw(data)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ratio_axes = [ax for ax in fig.axes if ax.get_xscale() == "log"]
    assert len(ratio_axes) == 2
    figure_box = fig.bbox
    for ax in ratio_axes:
        labels = [t for t in ax.texts if "×" in t.get_text()]
        assert len(labels) == 2  # the one shared mode (eager) and best against best
        label_boxes = [t.get_window_extent(renderer) for t in labels]
        ticks = [t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_text()]
        for i, box in enumerate(label_boxes):
            assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1
            assert not any(_overlap(box, other) for other in _boxes(ax, renderer))
            assert not any(_overlap(box, other) for j, other in enumerate(label_boxes) if j != i)
            assert not any(_overlap(box, tick) for tick in ticks)
        # each label level with its own row's dot
        dots = ax.collections[-1].get_offsets()
        for label, (_, y) in zip(labels, dots, strict=True):
            assert label.xy[1] == pytest.approx(y)
        # control: a label anchored on a dot, as before, is caught
        x, y = dots[0]
        on_whisker = ax.annotate(labels[0].get_text(), (x, y), ha="center", va="center", fontsize=6)
        assert any(_overlap(on_whisker.get_window_extent(renderer), other) for other in _boxes(ax, renderer))
    plt.close(fig)


def test_one_colour_per_framework_and_mode_in_every_figure():
    """F1's bars and F4's dots of the same framework and mode have the same colour, the
    palette's."""
    fig = training_speed.draw(table(workloads=(FIRST,)))
    bars = fig.axes[0]
    for patch, tick in zip(bars.patches, bars.get_xticklabels(), strict=True):
        framework, mode = tick.get_text().split("\n")[0].split(" ")
        assert matplotlib.colors.same_color(patch.get_facecolor()[:3], palette.mode_colour(framework, mode))
    cells = retrace_rows()
    fig = graph_modes.draw(pd.DataFrame(), graph_modes.retrace_table(cells), cells)
    dots = fig.axes[3].collections[-1]
    shown = graph_modes.retrace_cells(graph_modes.retrace_table(cells))
    for colour, row in zip(dots.get_facecolors(), shown.itertuples(), strict=True):
        assert matplotlib.colors.same_color(colour[:3], palette.mode_colour(row.framework, row.mode))


def test_no_figure_module_writes_its_own_colours():
    """Colours come from ``palette`` only: a literal hex colour or a named base colour in a
    figure module would drift from the other figures."""
    literal = re.compile(r"""["']#[0-9a-fA-F]{3,8}["']|color=["'](red|blue|orange|green)["']""")
    for name in [*FIGURE_MODULES, "common"]:
        source = (PROJECT / "fwstudy" / "figures" / f"{name}.py").read_text()
        assert not literal.search(source), f"{name}.py writes a colour of its own: {literal.search(source).group()}"


def retrace_rows():
    rows = []
    cases = [("tensorflow", "eager", "plain", 0, 0), ("tensorflow", "graph", "plain", 4, 0),
             ("tensorflow", "graph", "input_signature", 1, 0), ("tensorflow", "compiled", "input_signature", 1, 4),
             ("torch", "eager", "default", 0, None), ("torch", "compiled", "default", 2, None),
             ("torch", "compiled", "dynamic", 1, None)]
    for i, (framework, mode, variant, traces, xla) in enumerate(cases):
        for metric, value in (("traces", traces), ("xla_compilations", xla), ("sequence_total_s", 1.0 + i),
                              ("distinct_shapes", 4), ("shapes", 6)):
            if value is not None:
                rows.append(dict(trial_id=f"t{i}", workload=FIRST, framework=framework, mode=mode,
                                 variant=variant, status="ok", metric=metric, value=value))
    return pd.DataFrame(rows)


def test_f4_retracing_is_a_heat_map_of_counts_and_a_dot_plot_of_time():
    """One row per workload, framework, mode and variant (no empty slots of other frameworks'
    variants): each cell prints its count; XLA compilations only where TF compiled."""
    cells = retrace_rows()
    fig = graph_modes.draw(pd.DataFrame(), graph_modes.retrace_table(cells), cells)
    heat, dots = fig.axes[2], fig.axes[3]
    assert len(heat.images) == 1 and not heat.patches and not dots.patches
    rows = [t.get_text() for t in heat.get_yticklabels()]
    assert rows[0] == f"{FIRST} · TF eager · plain" and rows[-1] == f"{FIRST} · PT compiled · dynamic"
    assert len(rows) == 7
    grid = heat.images[0].get_array()
    assert list(grid[:, 0]) == [0, 4, 1, 1, 0, 2, 1]  # variants in RETRACE_VARIANTS' order
    assert list(np.ma.getmaskarray(grid[:, 1])) == [True, True, True, False, True, True, True]
    assert grid[3, 1] == 4
    printed = sorted(t.get_text() for t in heat.texts)
    assert printed == sorted(["0", "4", "1", "1", "4", "0", "2", "1"])
    numbers = numbers_of(fig)
    seq = numbers[numbers["quantity"] == "sequence_total_s"]
    assert sorted(seq["value"]) == [1.0 + i for i in range(7)]


# --- every figure records what it draws --------------------------------------------------------


def _training():
    return training_speed.draw(table(workloads=(FIRST,)))


def _figure(name: str):
    """A figure of module ``name`` from the synthetic inputs its own tests use."""
    from fwstudy.figures import (
        convergence,
        deployment,
        ease_of_use,
        footprint,
        hardware,
        inference,
        interoperability,
        resource_usage,
        robustness,
    )

    if name == "training_speed":
        return _training()
    if name in ("resource_usage", "hardware"):
        data = table(workloads=(FIRST,))
        data.loc[data["metric"] == "peak_rss_mb", "metric"] = "peak_anon_above_import_mb"
        extra = data[data["metric"] == "step_time_ms_median"].assign(metric="mfu", value=0.2)
        data = pd.concat([data, extra], ignore_index=True)
        return (resource_usage if name == "resource_usage" else hardware).draw(data)
    if name == "inference":
        data = table(workloads=(FIRST,))
        data.loc[data["metric"] == "step_time_ms_median", "metric"] = "latency_ms_p50"
        return inference.draw(data)
    if name == "graph_modes":
        cells = retrace_rows()
        return graph_modes.draw(pd.DataFrame(), graph_modes.retrace_table(cells), cells)
    if name == "scalability":
        from fwstudy.figures import scalability
        from fwstudy.harness.environment import code_version
        from tests.test_scaling import profile, record, table_of

        prof = profile(frameworks=["torch"], sweep_modes=["eager"])
        points = [*scalability.sweep_points(prof), *scalability.data_parallel_points(prof)]
        seen, records = set(), []
        for p in points:
            if p.config.identity(code_version()) not in seen:
                seen.add(p.config.identity(code_version()))
                records.append(record(p.config, 1000.0 * p.x))
        data = table_of(records)
        return scalability.draw(data, scalability.efficiency(data, points), cores=2)
    if name == "deployment":
        from tests.test_deployment import flat_table

        return deployment.draw(deployment.analyse(flat_table()))
    if name == "interoperability":
        from tests.test_interoperability import results

        return interoperability.draw(interoperability.analyse(results(2e-4)))
    if name == "convergence":
        from tests.test_convergence import synthetic_curves

        curves = synthetic_curves(3)
        return convergence.draw(curves, convergence.analyse(curves, 0.95, 0.9), 0.9)
    if name == "robustness":
        from tests.test_robustness import synthetic_maps

        maps = synthetic_maps(2)
        return robustness.draw(maps, robustness.analyse(maps, 4, 0.75, 4), 0.75)
    if name == "ease_of_use":
        metrics = pd.DataFrame([{"workload": w, "part": "script", "level": level, "framework": fw, "lloc": n,
                                 "cc_total": 2, "api_symbols": 3, "namespaces": 1, "methods": 0, "symbol_names": ""}
                                for w, n in (("mlp", 30), ("cnn", 40))
                                for level, fw in (("tf_gradient_tape", "tensorflow"), ("torch_loop", "torch"))])
        empty = pd.DataFrame(columns=["status", "framework"])
        return ease_of_use.draw(ease_of_use.analyse({"code_metrics": metrics, "debugging": empty,
                                                     "custom_gradient": empty, "parity": None}))
    if name == "footprint":
        install = pd.DataFrame([{"framework": fw, "distribution": dist, "version": "1", "variant": "cpu",
                                 "own_mb": own, "exclusive_deps_mb": 10.0, "transitive_deps_mb": 30.0,
                                 "transitive_deps": 5, "exclusive_deps": 2, "high_level": None,
                                 "high_level_in_closure": False, "high_level_installed": False, "high_level_mb": 0.0,
                                 "high_level_extra_deps": 0, "cuda_requirements": ""}
                                for fw, dist, own in (("tensorflow", "tensorflow-cpu", 1200.0), ("torch", "torch", 600.0))])
        numbers = {"install": install, "imports": pd.DataFrame(), "top_warm": pd.DataFrame(),
                   "top_cold": pd.DataFrame(), "cold_start": pd.DataFrame(), "environment": "synthetic"}
        return footprint.draw(numbers)
    raise AssertionError(f"no synthetic figure for {name}: add one here")


@pytest.mark.parametrize("name", FIGURE_MODULES)
def test_every_figure_records_the_numbers_it_draws(name):
    fig = _figure(name)
    numbers = numbers_of(fig)
    assert len(numbers) > 0 and numbers["panel"].notna().all() and numbers["quantity"].notna().all()
    assert pd.to_numeric(numbers["value"], errors="coerce").notna().any()
    plt.close(fig)


def test_the_twelve_figures_are_all_covered():
    assert len(FIGURE_MODULES) == 12, FIGURE_MODULES


def test_notebooks_save_with_their_profile():
    for path in sorted((PROJECT / "notebooks").glob("*.ipynb")):
        text = Path(path).read_text()
        assert "save_figure(" in text and "profile=params.profile))" in text, path.name
