"""Every SQL query about contacts."""

from api.db.models import Contact
from api.db.owned import OwnedRepository


class ContactRepository(OwnedRepository[Contact]):
    """Contact rows of one account."""

    model = Contact
