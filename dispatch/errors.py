"""The base of the domain's own errors, so a caller can tell "dispatch refused or failed"
from a bug or a library's exception without listing every class.

Each error keeps its own class (and any standard base it had, such as `ValueError` for the
ones pydantic validators raise), so nothing is caught differently for having this base.
Private control-flow signals that never leave their module (`_Deferred` in the delivery
service, `_NotNow` in the template sandbox) are not errors and keep `Exception`.
"""

from __future__ import annotations


class DispatchError(Exception):
    """An error raised by the domain (`dispatch`): a refused request, a failed provider
    call, a template that does not render."""
