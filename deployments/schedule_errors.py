"""The one error a task's schedule or timezone can raise."""

from __future__ import annotations

from typing import Literal

ScheduleField = Literal["schedule", "timezone"]

_MESSAGES: dict[ScheduleField, str] = {
    "schedule": "Invalid schedule",
    "timezone": "Invalid timezone",
}


class ScheduleError(ValueError):
    """Raised for an invalid schedule or timezone; the API answers it with a 400.

    `message` is exactly the text the contract puts in the error body.
    """

    field: ScheduleField
    message: str

    def __init__(self, field: ScheduleField) -> None:
        self.field = field
        self.message = _MESSAGES[field]
        super().__init__(self.message)
