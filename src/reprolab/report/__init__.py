"""reports/report.md and a self-contained reports/report.html from the pipeline's outputs."""
