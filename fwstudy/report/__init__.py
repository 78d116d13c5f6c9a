"""The study's static HTML report (``make report``): see ``build.py``."""

from fwstudy.report.build import build_report

__all__ = ["build_report"]
