"""Direct tests of ``torch_distill.log``: text tables, the run logger (metrics, progress lines), the curves plot."""

from __future__ import annotations

import io
import json

from torch_distill.log import RunLogger, format_table, plot_curves


def _row(g: int, **kw) -> dict:
    row = {"generation": g, "fitness_mean": -1.0 * g, "fitness_max": 0.5 * g, "gens_per_s": 2.5,
           "env_steps_per_s": 12345.0, "wall_time": 3.4}
    row.update(kw)
    return row


# ---------------------------------------------------------------------------------------------- format_table
def test_format_table_alignment_and_number_formatting():
    rows = [
        {"name": "a", "value": 1.234567, "steps": 12345.0, "big": 2_500_000.0, "n": 3},
        {"name": "longer-name", "value": float("nan"), "steps": 999.0, "big": -1e7, "n": 10},
    ]
    out = format_table(rows)
    lines = out.splitlines()
    assert len(lines) == 4
    assert len({len(ln) for ln in lines}) == 1  # every line has the same width
    assert all(ln.startswith("|") and ln.endswith("|") for ln in lines)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["name", "value", "steps", "big", "n"]
    assert set(lines[1]) == {"|", "-"}  # markdown separator
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert cells[0] == ["a", "1.235", "12.3k", "2.50M", "3"]
    assert cells[1] == ["longer-name", "nan", "999", "-10.00M", "10"]
    # columns line up: the separators are at the same offsets on every line
    bars = [[i for i, ch in enumerate(ln) if ch == "|"] for ln in lines]
    assert all(b == bars[0] for b in bars)
    # the widest cell sets the column width (one space of padding either side)
    assert lines[2].index("|", 1) == len("| longer-name ")


def test_format_table_column_selection_missing_values_and_empty():
    rows = [{"a": 1, "b": 2.0}, {"a": 3}]
    out = format_table(rows, columns=["b", "a"])
    lines = out.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["b", "a"]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["", "3"]
    assert format_table([]) == ""


# ----------------------------------------------------------------------------------------------- RunLogger
def test_metrics_rows_round_trip_torn_line_and_truncate(tmp_path):
    log = RunLogger(tmp_path / "run", stream=io.StringIO())
    assert (tmp_path / "run").is_dir()
    rows = [_row(g, es_mean_return=float(g)) for g in range(1, 6)]
    for r in rows:
        log.log(r)
    assert log.read_metrics() == rows
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln) for ln in lines] == rows  # one JSON object per line
    # a torn last line (killed while appending) is skipped
    with open(log.metrics_path, "a") as f:
        f.write('{"generation": 6, "fitn')
    assert log.read_metrics() == rows
    # resume: drop rows after the checkpoint generation (and the torn line)
    log.truncate_after(3)
    assert log.read_metrics() == rows[:3]
    assert len(log.metrics_path.read_text().splitlines()) == 3
    log.log(rows[3])
    assert log.read_metrics() == rows[:4]


def test_disabled_logger_writes_nothing(tmp_path):
    buf = io.StringIO()
    log = RunLogger(tmp_path / "off", enabled=False, stream=buf)
    log.log(_row(1))
    log.progress(_row(1), 1)
    log.print("hello")
    log.write_json("summary.json", {"a": 1})
    log.truncate_after(0)
    assert not (tmp_path / "off").exists()
    assert buf.getvalue() == "" and log.read_metrics() == []


def test_read_metrics_without_file_and_write_json(tmp_path):
    log = RunLogger(tmp_path / "r", stream=io.StringIO())
    assert log.read_metrics() == []
    log.truncate_after(5)  # no file: nothing to do
    assert not log.metrics_path.exists()
    log.write_json("summary.json", {"x": 1.5, "path": tmp_path})
    d = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert d == {"x": 1.5, "path": str(tmp_path)}


def test_progress_lines_every_log_every_and_at_the_end(tmp_path):
    buf = io.StringIO()
    log = RunLogger(tmp_path / "p", log_every=3, stream=buf)
    for g in range(1, 8):
        log.progress(_row(g, es_mean_return=42.5 if g == 6 else None), 7)
    lines = buf.getvalue().splitlines()
    assert [ln.split("|")[0].strip() for ln in lines] == ["gen    3/7", "gen    6/7", "gen    7/7"]
    parts = [p.strip() for p in lines[1].split("|")]
    assert parts == ["gen    6/7", "fitness mean -6 max 3", "ES-mean return 42.5", "2.50 gen/s",
                     "12.3k env-steps/s", "3s"]
    assert "ES-mean" not in lines[0] and "ES-mean" not in lines[2]
    log.print("done")
    assert buf.getvalue().endswith("done\n")


# --------------------------------------------------------------------------------------------- plot_curves
def test_plot_curves_writes_a_png(tmp_path):
    rows = [_row(g, es_mean_return=float(g) if g % 2 == 0 else None) for g in range(1, 8)]
    path = tmp_path / "sub" / "curves.png"
    plot_curves(rows, path, title="test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]  # no temporary file left behind
    # without any ES-mean evaluation
    plot_curves([{k: v for k, v in r.items() if k != "es_mean_return"} for r in rows], tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
