"""`python -m src.report <run or sweep dir>`: report.md, report.csv and curves.png of what the runs logged."""

from pathlib import Path

from src.report.read import Job, ReportError, read_jobs, read_search_results
from src.report.write import plot_curves, table, write_csv, write_markdown

__all__ = ["Job", "ReportError", "make_report"]


def make_report(path: str | Path) -> list[Path]:
    """Write report.md, report.csv and curves.png into `path` (a run or sweep dir); return their paths."""
    path = Path(path)
    jobs = read_jobs(path)
    header, rows = table(jobs)
    out = [path / "report.md", path / "report.csv", path / "curves.png"]
    write_markdown(out[0], path, jobs, header, rows, read_search_results(path))
    write_csv(out[1], header, rows)
    plot_curves(out[2], jobs)
    return out
