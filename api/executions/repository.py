"""Every SQL query about executions."""

from api.db.models import Execution
from api.db.owned import OwnedRepository


class ExecutionRepository(OwnedRepository[Execution]):
    """Execution rows of one account (list them with a ``task_id`` filter)."""

    model = Execution
