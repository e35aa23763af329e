"""The hosts table: politeness shared by every worker on one archive.

A host's request turn (so that its delay holds across workers, as the server sees it) and the
time it asked every worker to wait until (Retry-After, kept across restarts).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from ingest.dbsession import Database
from ingest.models import Host
from ingest.records import utcnow


class HostTurns(Database):
    """`Store`'s hosts: `take_turn`, `end_turn`, `block_host`, `blocked_hosts`."""

    def take_turn(self, host: str, hold: float, now: float) -> tuple[float | None, datetime | None]:
        """Take ``host``'s request turn at ``now`` (epoch seconds) unless another worker's
        turn holds it: one atomic compare-and-set, just before the request is sent. A turn
        holds the host for ``hold`` seconds, or until `end_turn` when its answer begins to
        arrive, so that a host's delay holds across every worker, as the server sees it.

        Returns (None when the turn is ours, else the epoch seconds before which no request
        may start; the time the host asked every worker to wait until, if it did).
        """
        hosts = Host.__table__  # type: ignore[attr-defined]
        due = hosts.c.next_request_at.is_(None) | (hosts.c.next_request_at <= now)
        take = (
            self._insert(Host)
            .values(host=host, next_request_at=now + hold, updated_at=utcnow())
            .on_conflict_do_update(
                index_elements=["host"], set_={"next_request_at": now + hold}, where=due
            )
            .returning(hosts.c.blocked_until)
        )
        with self._session() as session:
            taken = session.execute(take).first()
            if taken is not None:
                session.commit()
                return None, taken[0]
            held = session.execute(
                sa.select(hosts.c.next_request_at, hosts.c.blocked_until).where(
                    hosts.c.host == host
                )
            ).one()
            session.commit()
            return held[0], held[1]

    def end_turn(self, host: str, held: float, until: float) -> None:
        """End the turn that holds ``host`` with ``held`` (what `take_turn` set): the next
        request may start at ``until`` (epoch seconds; the answer's arrival plus the delay)."""
        hosts = Host.__table__  # type: ignore[attr-defined]
        with self._session() as session:
            session.execute(
                sa.update(hosts)
                .where(hosts.c.host == host, hosts.c.next_request_at == held)
                .values(next_request_at=until)
            )
            session.commit()

    def block_host(self, host: str, until: datetime, reason: str) -> None:
        """Remember that ``host`` asked us to wait until ``until`` (kept across restarts)."""
        values = {"blocked_until": until, "reason": reason, "updated_at": utcnow()}
        with self._session() as session:
            session.execute(
                self._insert(Host)
                .values(host=host, **values)
                .on_conflict_do_update(
                    index_elements=["host"],
                    set_=values,
                    where=col(Host.blocked_until).is_(None) | (col(Host.blocked_until) < until),
                )
            )
            session.commit()

    def blocked_hosts(self, now: datetime) -> dict[str, datetime]:
        with self._session() as session:
            rows = session.exec(select(Host).where(col(Host.blocked_until) > now))
            return {h.host: h.blocked_until for h in rows if h.blocked_until}
