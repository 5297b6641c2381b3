#!/usr/bin/env python3
"""The computing half of bench/lib.sh: statistics over runs, the area's markdown table, its chart
(gnuplot, SVG) and the README's benchmark blocks. docs/benchmarks.md describes the method.

  stats.py summary SAMPLES.tsv               key, median, min, max, runs, modes of one sample file
  stats.py table AREA_DIR [CHART.tsv]        the area's table from AREA_DIR/rows.tsv and samples/
  stats.py chart CHART.tsv OUT.svg TITLE     one panel per figure: each implementation's median, min-max bars
                                           (OUT.png: a PNG instead, for a quick look)
  stats.py readme README.md AREA BLOCK.md    puts BLOCK.md between the README's markers for AREA

A sample file holds `key<TAB>value[<TAB>unit]` lines, one line per key and run (a bench program's
output, appended once per fresh process). Other lines are ignored.
"""
import math
import os
import re
import statistics
import subprocess
import sys

# The runs show two modes when, sorted, they can be split between two neighbours at least kModeGap
# apart into two groups of at least kModeMinRuns runs whose medians differ by kModeRatio or more (of
# the possible splits, the one with the most different medians). Anything else is one mode with a
# spread: one outlying run is not a mode.
kModeGap = 1.2
kModeRatio = 1.5
kModeMinRuns = 2


def read_samples(path):
    samples = {}
    if not os.path.exists(path):
        return samples
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            try:
                value = float(parts[1])
            except ValueError:
                continue
            if math.isfinite(value):
                samples.setdefault(parts[0], []).append(value)
    return samples


def modes(values):
    """[(median, runs), (median, runs)] when the runs fall into two modes (see kModeGap), else []."""
    v = sorted(values)
    if len(v) < 2 * kModeMinRuns or v[0] <= 0:
        return []
    best = None
    for at in range(kModeMinRuns, len(v) - kModeMinRuns + 1):
        if v[at] / v[at - 1] < kModeGap:
            continue
        low, high = statistics.median(v[:at]), statistics.median(v[at:])
        if high / low >= kModeRatio and (best is None or high / low > best[0]):
            best = (high / low, [(low, at), (high, len(v) - at)])
    return best[1] if best else []


class Stat:
    def __init__(self, values):
        self.values = list(values)
        self.median = statistics.median(self.values)
        self.min = min(self.values)
        self.max = max(self.values)
        self.modes = modes(self.values)


def digits3(value):
    """Three significant digits, never an exponent: 2470 -> '2470', 0.984 -> '0.984'."""
    if value == 0:
        return "0"
    return f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"


def si(value):
    """249e6 -> '249M', 1234 -> '1.23k', 0.5 -> '0.5'."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return digits3(value / factor) + prefix
    return digits3(value)


def number(value, unit):
    return si(value) if unit.endswith("/s") else digits3(value)


def with_unit(text, unit):
    if unit in ("×", "x"):
        return f"{text}×"
    if unit == "%":
        return f"{text}%"
    if unit == "B/s" and text[-1:] in "kMG":
        return f"{text[:-1]} {text[-1]}B/s"
    return f"{text} {unit}" if unit else text


class Row:
    def __init__(self, fields):
        self.figure, self.impl, self.role, source, self.unit = fields[:5]
        self.set, _, self.key = source.partition(":")
        self.opts = {}
        for opt in fields[5:]:
            name, _, value = opt.partition("=")
            self.opts[name] = value
        self.lower = "lower" in self.opts
        self.stat = None

    def speeds(self):
        """Per-run speeds (higher is better), for ratios."""
        return [1 / v if self.lower else v for v in self.stat.values if v > 0]

    def speed(self):
        return 1 / self.stat.median if self.lower else self.stat.median


def ratio_text(ours, other, percent):
    """procpool's speed over the other row's: the median ratio, and the range of the per-run ratios
    when both were measured in the same runs (as many samples on each side)."""
    scale = 100 if percent else 1

    def fmt(r):
        return f"{r * scale:.0f}%" if percent else (f"{r:.2g}×" if r < 10 else f"{r:.0f}×")

    median = ours.speed() / other.speed()
    text = fmt(median)
    paired = per_run_ratios(ours, other)
    if paired and len(paired) > 1:
        text += f" ({fmt(min(paired))}–{fmt(max(paired))})"
    return text, median, paired


def per_run_ratios(ours, other):
    a, b = ours.speeds(), other.speeds()
    if len(a) != len(b) or not a:
        return []
    return [x / y for x, y in zip(a, b)]


def render_table(area_dir):
    rows = []
    with open(os.path.join(area_dir, "rows.tsv"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(Row(line.rstrip("\n").split("\t")))
    cache = {}
    for row in rows:
        if row.set not in cache:
            cache[row.set] = read_samples(os.path.join(area_dir, "samples", row.set + ".tsv"))
        values = cache[row.set].get(row.key)
        row.stat = Stat(values) if values else None
    out = ["| figure | implementation | median | min – max (runs) | procpool is | target |",
           "|---|---|---:|---:|---|---|"]
    ours_of = {}
    for row in rows:
        if row.role == "ours" and row.figure not in ours_of:
            ours_of[row.figure] = row
    last_figure = None
    for row in rows:
        figure = row.figure if row.figure != last_figure else ""
        last_figure = row.figure
        impl = row.impl + (" (limit)" if row.role == "limit" else "")
        if row.stat is None:
            out.append(f"| {figure} | {impl} | n/a | | | {row.opts.get('target', '')} |")
            continue
        s = row.stat
        median = with_unit(number(s.median, row.unit), row.unit)
        spread = f"{number(s.min, row.unit)} – {number(s.max, row.unit)} ({len(s.values)})"
        if s.modes:
            (m1, n1), (m2, n2) = s.modes
            spread += f"; **two modes**: {number(m1, row.unit)} ×{n1} / {number(m2, row.unit)} ×{n2}"
        standing, target = "", row.opts.get("target", "")
        ours = ours_of.get(row.figure)
        if row.role in ("peer", "limit") and ours is not None and ours.stat is not None:
            standing, median_ratio, paired = ratio_text(ours, row, row.role == "limit")
            standing = ("at " if row.role == "limit" else "") + standing
            if "ratio" in row.opts:
                want = float(row.opts["ratio"])
                runs = paired or [median_ratio]
                met = sum(r >= want for r in runs)
                verdict = "met" if met == len(runs) else "MISSED"
                target = (target + ": " if target else f"≥ {want:g}×: ") + f"{verdict} ({met}/{len(runs)} runs)"
        for bound, sign, ok in (("max", "≤", lambda v, b: v <= b), ("min", "≥", lambda v, b: v >= b)):
            if bound in row.opts:
                b = float(row.opts[bound])
                verdict = "met" if ok(s.median, b) else "MISSED"
                runs = sum(ok(v, b) for v in s.values)
                label = target or f"{sign} {with_unit(f'{b:g}', row.unit)}"
                target = f"{label}: {verdict} (median; {runs}/{len(s.values)} runs)"
        out.append(f"| {figure} | {impl} | {median} | {spread} | {standing} | {target} |")
    return rows, "\n".join(out)


def write_chart_data(rows, path):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            if row.stat is None:
                continue
            s = row.stat
            f.write("\t".join([row.figure, row.impl, row.role, row.unit, "1" if row.lower else "0",
                               repr(s.median), repr(s.min), repr(s.max)]) + "\n")


def gnuplot_text(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "").replace("@", "")


def wrap(text, width):
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\\n".join(lines)


def draw_chart(data_path, svg_path, title):
    figures = {}
    with open(data_path, encoding="utf-8") as f:
        for line in f:
            fig, impl, role, unit, lower, med, lo, hi = line.rstrip("\n").split("\t")
            figures.setdefault(fig, []).append((impl, role, unit, lower == "1", float(med), float(lo), float(hi)))
    if not figures:
        return False
    n = len(figures)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    width = max(400, 90 * max(len(bars) for bars in figures.values()))  # room for each bar's label
    colour = {"ours": 1, "variant": 2, "peer": 3, "limit": 4}
    script = [
        (f'set terminal pngcairo size {cols * width},{rows * 330 + 40} font "sans,9"' if svg_path.endswith(".png") else
         f'set terminal svg size {cols * width},{rows * 330 + 40} dynamic font "sans,10" background "white"'),
        f'set output "{svg_path}"',
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.6",
        "set linetype 1 lc rgb '#1f77b4'", "set linetype 2 lc rgb '#6baed6'",
        "set linetype 3 lc rgb '#ff7f0e'", "set linetype 4 lc rgb '#8c8c8c'",
        "set xtics nomirror font ',8'", "set ytics nomirror", "set grid ytics",
        "unset key", "set bmargin 6", "set termoption noenhanced",
        "set style line 9 lc rgb 'black'",
        f'set multiplot layout {rows},{cols} title "{gnuplot_text(title)} (median; bars: min-max of the runs; '
        'blue: procpool, orange: peer, grey: limit)" font ",11"',
    ]
    for fig, bars in figures.items():
        unit = bars[0][2]
        positive = [v for b in bars for v in b[4:] if v > 0]
        log = positive and max(positive) / min(positive) > 20
        script.append("set logscale y" if log else "unset logscale y")
        script.append(('set format y "%.0s%c"' if max(positive) >= 1e5 else 'set format y "%g"') if log else
                      'set format y "%.1s%c"' if positive and max(positive) >= 1e4 else 'set format y "%g"')
        script.append("set yrange [*:*]" if log else "set yrange [0:*]")
        better = "lower is better" if bars[0][3] else "higher is better"
        script.append(f'set title "{wrap(gnuplot_text(fig), 36)}" font ",10"')
        script.append(f'set ylabel "{gnuplot_text(unit)}, {better}{", log" if log else ""}"')
        script.append("$data << EOD")
        for i, (impl, role, _, _, med, lo, hi) in enumerate(bars):
            script.append(f'{i} "{wrap(gnuplot_text(impl), 11)}" {med!r} {lo!r} {hi!r} {colour.get(role, 1)}')
        script.append("EOD")
        script.append(f"set xrange [-0.6:{len(bars) - 0.4}]")
        script.append("plot $data using 1:3:6:xtic(2) with boxes lc variable, "
                      "'' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 7 ps 0.3")
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=True)
    return True


def update_readme(readme, area, block_path):
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    with open(block_path, encoding="utf-8") as f:
        block = f.read().strip("\n")
    begin, end = f"<!-- bench:{area} -->", f"<!-- /bench:{area} -->"
    new = f"{begin}\n{block}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: new, text, count=1)
    elif "<!-- /bench -->" in text:
        text = text.replace("<!-- /bench -->", f"{new}\n\n<!-- /bench -->", 1)
    else:
        sys.exit(f"stats.py: {readme} has no <!-- /bench --> marker to put the {area} block before")
    with open(readme, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv):
    if len(argv) >= 2 and argv[0] == "summary":
        for key, values in read_samples(argv[1]).items():
            s = Stat(values)
            m = " / ".join(f"{v:.6g}×{n}" for v, n in s.modes) or "-"
            print(f"{key}\t{s.median:.6g}\t{s.min:.6g}\t{s.max:.6g}\t{len(values)}\t{m}")
    elif len(argv) in (2, 3) and argv[0] == "table":
        rows, table = render_table(argv[1])
        print(table)
        if len(argv) == 3:
            write_chart_data(rows, argv[2])
    elif len(argv) == 4 and argv[0] == "chart":
        draw_chart(argv[1], argv[2], argv[3])
    elif len(argv) == 4 and argv[0] == "readme":
        update_readme(argv[1], argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
