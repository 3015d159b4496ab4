"""The tamper-evident history: every state change is an entry chained by SHA-256."""

from __future__ import annotations

import contextvars
import hashlib
import json
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from cas.models import AuditChainHead, AuditEntry

GENESIS_HASH = "0" * 64
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_request_id", default=""
)


def entry_digest(entry: AuditEntry) -> str:
    content = {
        "at": entry.at.isoformat(),
        "actor": entry.actor_id,
        "actor_name": entry.actor_name,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "action": entry.action,
        "from": entry.from_state,
        "to": entry.to_state,
        "reason": entry.reason,
        "request_id": entry.request_id,
        "previous": entry.previous_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def audit_record(
    *,
    obj,
    action: str,
    by,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
) -> AuditEntry:
    """Append an entry; must run inside the transaction that made the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the state change's transaction")
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS_HASH}
    )
    entry = AuditEntry(
        at=timezone.now(),
        actor=by if by is not None and by.is_authenticated else None,
        actor_name=by.get_username() if by is not None and by.is_authenticated else "system",
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        action=action,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        request_id=current_request_id.get(),
        previous_hash=head.last_hash,
    )
    entry.entry_hash = entry_digest(entry)
    entry.save()
    head.last_hash = entry.entry_hash
    head.length += 1
    head.save(update_fields=["last_hash", "length"])
    return entry


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    message: str
    first_broken_id: int | None = None


def verify_chain() -> ChainReport:
    previous = GENESIS_HASH
    checked = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.previous_hash != previous:
            return ChainReport(
                False,
                checked,
                f"entry {entry.pk} does not follow the entry before it "
                "(an entry was deleted or reordered before it)",
                entry.pk,
            )
        if entry_digest(entry) != entry.entry_hash:
            return ChainReport(
                False, checked, f"entry {entry.pk} was altered after it was written", entry.pk
            )
        previous = entry.entry_hash
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.last_hash != previous or head.length != checked):
        return ChainReport(
            False,
            checked,
            f"the chain ends after {checked} entries but {head.length} were written "
            "(the latest entries were deleted)",
            None,
        )
    return ChainReport(True, checked, f"audit chain intact: {checked} entries")
