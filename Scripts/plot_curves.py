"""Draws one metric of several run directories against wall-clock minutes, as an SVG file, to put
two runs that were not made by one `ganflow compare` (so have no compare.html) side by side:

    python3 Scripts/plot_curves.py --metric fid.distance --log \
        dcgan=runs/dcgan-fashion stylegan2=runs/stylegan2-fashion --out curves.svg

Each argument is LABEL=RUN_DIRECTORY; the points are the rows of RUN_DIRECTORY/metrics.jsonl that
carry the metric, at their "time" (seconds since the run started), or with `--x steps` at their
step (for runs that shared the machine, whose minutes are not comparable). LABEL=DIR1,DIR2,...
draws one curve, the mean over several runs (seeds) at the steps they all evaluated, at their mean
minutes. Standard library only.
"""
import argparse
import json
import math
import os
import sys

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]


def points(run, metric, x="minutes"):
    path = os.path.join(run, "metrics.jsonl")
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        sys.exit(f"plot_curves: {path}: {error}")
    key, scale = ("time", 60) if x == "minutes" else ("step", 1)
    found = {row["step"]: (row[key] / scale, float(row[metric]))
             for row in rows if metric in row and key in row and "step" in row}
    if not found:
        sys.exit(f"plot_curves: {path}: no row has '{metric}'")
    return found


def mean_points(runs, metric, x="minutes"):
    """The mean of several runs' points at the steps all of them have, in step order."""
    each = [points(run, metric, x) for run in runs]
    steps = sorted(set.intersection(*(set(p) for p in each)))
    if not steps:
        sys.exit(f"plot_curves: {', '.join(runs)}: no step at which all of them have '{metric}'")
    return [(sum(p[s][0] for p in each) / len(each), sum(p[s][1] for p in each) / len(each)) for s in steps]


def nice_ticks(low, high, log):
    if log:
        ticks = []
        for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
            for m in (1, 2, 5):
                v = m * 10 ** exponent
                if low <= v <= high:
                    ticks.append(v)
        return ticks
    step = 10 ** math.floor(math.log10(max(high - low, 1e-9)))
    while (high - low) / step > 8:
        step *= 2
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIRECTORY, or LABEL=DIR1,DIR2,... for their mean")
    parser.add_argument("--metric", default="fid.distance")
    parser.add_argument("--log", action="store_true", help="a logarithmic y axis")
    parser.add_argument("--title", default=None)
    parser.add_argument("--x", choices=["minutes", "steps"], default="minutes", help="the x axis")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    series = []
    for item in args.runs:
        label, sep, run = item.partition("=")
        if not sep or not label or not run:
            sys.exit(f"plot_curves: '{item}' is not LABEL=RUN_DIRECTORY")
        series.append((label, mean_points(run.split(","), args.metric, args.x)))

    xs = [x for _, p in series for x, _ in p]
    ys = [y for _, p in series for _, y in p]
    if args.log and min(ys) <= 0:
        sys.exit(f"plot_curves: --log needs positive values; '{args.metric}' has {min(ys)}")
    x_max = max(xs)
    y_low, y_high = (min(ys) * 0.9, max(ys) * 1.1) if args.log else (0, max(ys) * 1.05)
    right = 70 + 7 * max(len(label) for label, _ in series)  # room for the legend
    width, height, left, top, bottom = 570 + right, 420, 64, 36, 48
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x):
        return left + plot_w * x / x_max

    def py(y):
        if args.log:
            t = (math.log(y) - math.log(y_low)) / (math.log(y_high) - math.log(y_low))
        else:
            t = (y - y_low) / (y_high - y_low)
        return top + plot_h * (1 - t)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    title = args.title or f"{args.metric} against {args.x}"
    out.append(f'<text x="{left}" y="22" font-size="14">{title}</text>')
    for y in nice_ticks(y_low, y_high, args.log):
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in nice_ticks(0, x_max, False):
        out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 10}" text-anchor="middle">{args.x}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>')
    for i, (label, p) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in p)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in p:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>')
        ly = top + 16 + 20 * i
        out.append(f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 32}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + plot_w + 38}" y="{ly}">{label} ({p[-1][1]:.3g})</text>')
    out.append("</svg>")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
