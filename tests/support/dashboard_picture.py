"""``make dashboard-picture``: docs/dashboard.png, the template's dashboard drawn with a demo run's data.

Reads the widgets (position, size, title, metrics) from template.yaml's ``Dashboard`` resource and
the function's EMF metric documents from a demo run's output (``make demo`` writes them to
``.demo/function.log``), then draws each widget where the CloudWatch console would put it. The
function's own metrics (``TaoResultsToS3``) are plotted per second of the run, the failure metrics
one line per ``reason`` as the dashboard's SEARCH expressions show them. AWS's own metrics (AWS/SQS,
AWS/Lambda) come from what the demo measured from the outside (``aws-metrics.log``, see
tao_results_demo.demo_metrics); a widget with no local stand-in lists what it will show.

Run from the repository root: ``python -m tests.support.dashboard_picture --logs .demo/function.log``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.template.test_template import load_cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
GRID_COLUMNS = 24
SEARCH_METRIC = re.compile(r'MetricName="(\w+)"')


@dataclass(frozen=True)
class Point:
    """One metric value from an EMF document: seconds since the first document, and its dimensions."""

    second: float
    namespace: str
    name: str
    value: float
    dimensions: tuple[tuple[str, str], ...]


def read_points(lines: Iterable[str]) -> list[Point]:
    """Every metric value in the EMF documents among ``lines`` (other lines are skipped)."""
    documents = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            documents.append(document)
    if not documents:
        return []
    start = min(document["_aws"]["Timestamp"] for document in documents)
    points = []
    for document in documents:
        second = (document["_aws"]["Timestamp"] - start) / 1000
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_names in directive["Dimensions"]:
                dimensions = tuple(sorted((name, str(document[name])) for name in dimension_names))
                for metric in directive["Metrics"]:
                    values = document[metric["Name"]]
                    for value in values if isinstance(values, list) else [values]:
                        point = Point(
                            second, directive["Namespace"], metric["Name"], float(value), dimensions
                        )
                        points.append(point)
    return points


def dashboard_widgets(template_path: Path) -> list[dict[str, Any]]:
    body = load_cfn_yaml(template_path)["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return list(json.loads(body)["widgets"])


def series_for(
    row: list[Any], points: list[Point], function_name: str
) -> dict[str, list[tuple[float, float]]]:
    """Label → [(second, value)] for one metric row of a widget (empty for AWS namespaces)."""
    if isinstance(row[0], dict):  # SEARCH('{Namespace,reason,service} MetricName="X" ...')
        match = SEARCH_METRIC.search(row[0]["expression"])
        name = match[1] if match else ""
        by_reason: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for point in points:
            dimensions = dict(point.dimensions)
            if point.name == name and "reason" in dimensions:
                by_reason[dimensions["reason"]].append((point.second, point.value))
        return dict(by_reason)
    options = row[-1] if isinstance(row[-1], dict) else {}
    pairs = [item for item in row[2:] if not isinstance(item, dict)]
    wanted = dict(zip(pairs[::2], pairs[1::2], strict=True))
    if "function_name" in wanted:
        wanted["function_name"] = function_name
    selected = [
        (point.second, point.value)
        for point in points
        if (point.namespace, point.name) == (row[0], row[1]) and dict(point.dimensions) == wanted
    ]
    return {str(options.get("label", row[1])): selected} if selected else {}


def per_second(
    values: list[tuple[float, float]], statistic: str, span: int
) -> tuple[list[float], list[float]]:
    """One value per second of the run; counts are 0 where nothing happened, as CloudWatch sums are."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for second, value in values:
        buckets[int(second)].append(value)
    if statistic in ("Sum", "SampleCount"):
        every = range(span + 1)
        return [float(s) for s in every], [sum(buckets.get(s, [])) for s in every]
    seconds = sorted(buckets)
    if statistic == "Maximum":
        return [float(s) for s in seconds], [max(buckets[s]) for s in seconds]
    quantile = {"p50": 0.5, "p99": 0.99, "Average": None}.get(statistic, 0.5)
    result = []
    for s in seconds:
        ordered = sorted(buckets[s])
        if quantile is None:
            result.append(sum(ordered) / len(ordered))
        else:
            result.append(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))])
    return [float(s) for s in seconds], result


def draw(widgets: list[dict[str, Any]], points: list[Point], out: Path, function_name: str) -> None:
    import matplotlib  # noqa: PLC0415 (bench extra; only this script needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = max(widget["y"] + widget["height"] for widget in widgets)
    unit = 0.62  # inches per grid cell
    figure = plt.figure(figsize=(GRID_COLUMNS * unit, rows * unit * 0.85))
    figure.suptitle(
        "The CloudWatch dashboard of template.yaml, drawn with a `make demo` run\n"
        "(the function's EMF metrics; queue depths and invocations measured locally; one point per second)",
        fontsize=13,
    )
    top = 0.93
    span = int(max(point.second for point in points)) + 1
    for widget in widgets:
        properties = widget["properties"]
        left = widget["x"] / GRID_COLUMNS + 0.035
        bottom = top * (1 - (widget["y"] + widget["height"]) / rows) + 0.045
        axes = figure.add_axes(
            (left, bottom, widget["width"] / GRID_COLUMNS - 0.05, top * widget["height"] / rows - 0.085)
        )
        axes.set_title(properties["title"], fontsize=10, loc="left")
        drawn, handles = 0, []
        for row in properties["metrics"]:
            options = row[-1] if isinstance(row[-1], dict) else {}
            statistic = str(options.get("stat", properties.get("stat", "Sum")))
            for label, values in sorted(series_for(row, points, function_name).items()):
                xs, ys = per_second(values, statistic, span)
                target = axes.twinx() if options.get("yAxis") == "right" else axes
                handles += target.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=label,
                                       color=f"C{drawn}")  # fmt: skip
                if target is not axes:
                    target.set_ylabel(label, fontsize=8)
                    target.tick_params(labelsize=7)
                drawn += 1
        if drawn:
            axes.set_xlim(-0.5, span + 0.5)
            axes.legend(handles=handles, fontsize=7, loc="upper right")
            axes.set_xlabel("seconds into the demo", fontsize=8)
        else:
            names = sorted(
                {f"{row[0]} {row[1]}" for row in properties["metrics"] if not isinstance(row[0], dict)}
            )
            axes.text(
                0.5, 0.5, "no local stand-in; in AWS:\n" + "\n".join(names),
                ha="center", va="center", fontsize=8, color="0.35", transform=axes.transAxes,
            )  # fmt: skip
            axes.set_xticks([])
            axes.set_yticks([])
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.dashboard_picture", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--logs",
        type=Path,
        default=Path(".demo/function.log"),
        help="a demo run's function output; its aws-metrics.log beside it is read too (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"), help="(default: %(default)s)")
    parser.add_argument(
        "--template", type=Path, default=ROOT / "template.yaml", help="(default: the repository's)"
    )
    parser.add_argument(
        "--function-name", default="download-result", help="the run's function name (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    lines = args.logs.read_text(encoding="utf-8").splitlines()
    aws_side = args.logs.with_name("aws-metrics.log")  # tao_results_demo.demo_metrics
    if aws_side.exists():
        lines += aws_side.read_text(encoding="utf-8").splitlines()
    points = read_points(lines)
    if not points:
        print(f"no EMF metric documents in {args.logs}: run `make demo` first", file=sys.stderr)
        return 1
    draw(dashboard_widgets(args.template), points, args.out, args.function_name)
    print(f"wrote {args.out} ({len(points)} metric values from {args.logs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
