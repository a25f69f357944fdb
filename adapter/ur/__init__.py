"""Utilization-review packages (Da Vinci PAS-shaped): minimum necessary, through the consent release point."""

from adapter.errors import NothingReleasableError
from adapter.ur.catalog import ServiceCode, UrAsk, UrRequest, catalog
from adapter.ur.package import UrPackage, build_package, check_payer, report_lines
from adapter.ur.select import Excluded

__all__ = [
    "Excluded",
    "NothingReleasableError",
    "ServiceCode",
    "UrAsk",
    "UrPackage",
    "UrRequest",
    "build_package",
    "catalog",
    "check_payer",
    "report_lines",
]
