"""Notifications to departments' webhooks: the sender of the outbox that every request and
dispute step writes in its own transaction (`records.notify`), the overdue sweep, signing and
the delivery log. `govex notify` and `govex serve` (a background thread) run the sender.

Public API: `send_pending` (one pass: sweep, then send what is due), `run_sender`,
`start_sender_thread`, `sweep_overdue`, `department_secret`, `signature`, `delivery_log`,
`PassSummary`.
"""

from exchange.notify.sender import (
    PassSummary,
    delivery_log,
    department_secret,
    run_sender,
    send_pending,
    signature,
    start_sender_thread,
)
from exchange.notify.sweep import sweep_overdue

__all__ = [
    "PassSummary",
    "delivery_log",
    "department_secret",
    "run_sender",
    "send_pending",
    "signature",
    "start_sender_thread",
    "sweep_overdue",
]
