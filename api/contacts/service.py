"""Contact use cases. Deleting a contact deletes its tasks (and their deployments)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import Clock, to_ms
from api.contacts.repository import ContactRepository
from api.contacts.schemas import ContactCreate, ContactOut, ContactUpdate
from api.db.engine import Database
from api.db.models import Contact
from api.errors import NotFound
from api.ids import new_id
from api.meta import check_meta
from api.resources import ResourceService, sent_fields, to_wire
from api.tasks.projection import TaskProjection
from api.tasks.repository import TaskRepository


def contact_out(contact: Contact) -> ContactOut:
    """The wire object of a contact row."""
    return to_wire(contact, ContactOut)


class ContactService(ResourceService[Contact, ContactOut]):
    """Create, read, update and delete contacts of one account."""

    def __init__(self, db: Database, clock: Clock, projection: TaskProjection) -> None:
        super().__init__(db, clock, contact_out, "Contact not found")
        self.projection = projection

    def repository(self, session: AsyncSession) -> ContactRepository:
        """Contact rows."""
        return ContactRepository(session)

    async def create(self, account_id: str, body: ContactCreate) -> str:
        """Store a new contact; returns its id."""
        now_ms = to_ms(self.clock())
        fields = sent_fields(body)
        fields["meta"] = check_meta(body.meta)
        contact = Contact(
            id=new_id("contact"),
            account_id=account_id,
            created_at=now_ms,
            updated_at=now_ms,
            **fields,
        )
        async with self.db.transaction() as session:
            ContactRepository(session).add(contact)
        return contact.id

    async def update(self, account_id: str, contact_id: str, body: ContactUpdate) -> str:
        """Apply a partial update."""
        return await self.update_fields(account_id, contact_id, body)

    async def delete(self, account_id: str, contact_id: str) -> str:
        """Delete the contact and every task of it."""
        async with self.db.transaction() as session:
            contacts = ContactRepository(session)
            contact = await contacts.get(account_id, contact_id, lock=True)
            if contact is None:
                raise NotFound(self.not_found)
            tasks = TaskRepository(session, to_ms(self.clock()))
            task_ids = list(await tasks.ids_of_contact(account_id, contact_id))
            await tasks.delete_ids(account_id, task_ids)
            await contacts.delete(contact)
        await self.projection.remove([(account_id, task_id) for task_id in task_ids])
        return contact_id
