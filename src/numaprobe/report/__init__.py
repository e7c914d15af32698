"""Pictures and a report from result documents (results.py): ``plot_files`` writes each
figure of a document as PNG and SVG; ``html_report`` writes one self-contained HTML page
(tables, warnings, the machine and the figures inline) for one or more documents.

Both need matplotlib (``pip install 'numaprobe[plot]'``), imported only when called; without it
they raise ImportError with that hint.
"""
from .html import html_report
from .plots import plot_files

__all__ = ["plot_files", "html_report"]
