"""Raw captures in the archive: each body kept once, read back whatever its storage, what they
take, and the bodies of older captures moved over.

A capture (``captures``) points at its body (``capture_bodies``, one row per SHA-256 of the
decoded page, `ingest.captures`); captures made before revision 0015 hold a zlib stream of
their own instead (``body_id`` NULL). `capture_body` is the one way to read either.
`pack_captures` moves those old bodies into ``capture_bodies`` a batch per transaction: the
upgrade itself rewrites nothing, so an archive of any size upgrades at once, and this can run
later, beside a daemon, interrupted and resumed at will.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from ingest.captures import ZSTD_MAGIC, PackedBody, pack, recompress, unpack
from ingest.dbsession import Database
from ingest.errors import StoreError
from ingest.models import Article, Capture, CaptureBody
from ingest.records import Page

PACK_BATCH = 200  # old captures moved a transaction (about 7 MB of bodies at 35 KB each)
PACK_LEVEL = 6  # zstd level of `recompress_bodies`: 9% less than level 3 (`bench.captures`)


@dataclass
class Packed:
    """What `pack_captures` did."""

    captures: int = 0  # captures that now share a body
    bodies: int = 0  # bodies stored for them that were not in the archive yet
    bytes_before: int = 0  # their inline zlib streams
    bytes_after: int = 0  # the bodies added
    damaged: dict[int, str] = field(default_factory=dict)  # capture id -> why it stays inline


@dataclass
class Recompressed:
    """What `recompress_bodies` did."""

    bodies: int = 0  # bodies kept as they came, now zstd frames
    bytes_before: int = 0
    bytes_after: int = 0
    damaged: dict[int, str] = field(default_factory=dict)  # body id -> why it stays as it is


class CaptureStore(Database):
    """`Store`'s captures: `capture_body`, `storage`, `pack_captures`."""

    @cached_property
    def _new_body(self) -> Any:
        """Insert-if-new of a body by its address: two writers storing one body at once
        store it once (PostgreSQL: the second waits for the first's commit, then finds its
        row)."""
        return self._insert(CaptureBody).on_conflict_do_nothing(index_elements=["sha256"])

    def _keep_captures(
        self, conn: sa.Connection, kept: Sequence[tuple[int, Page, PackedBody]]
    ) -> list[int]:
        """Keep raw pages, each ``(article id, page as received, its packed body)``: the body
        once (`_body_ids`, shared with every capture of the same bytes), then a capture row
        pointing at it with the response's and the request's headers. Returns the captures'
        ids, in order."""
        if not kept:
            return []
        ids, _ = self._body_ids(conn, (raw for *_, raw in kept))
        rows = [
            {
                "article_id": article_id,
                "url": page.final_url,
                "status": page.status,
                "headers": page.headers,
                "request_headers": page.request_headers,
                "body": b"",  # the body is ``body_id``'s
                "body_id": ids[raw.sha256],
                "fetched_at": page.fetched_at,
            }
            for article_id, page, raw in kept
        ]
        insert = sa.insert(Capture).returning(col(Capture.id), sort_by_parameter_order=True)
        return list(conn.execute(insert, rows).scalars())

    def _body_ids(
        self, conn: sa.Connection, bodies: Iterable[PackedBody]
    ) -> tuple[dict[str, int], set[str]]:
        """The ids of ``bodies`` by SHA-256, each stored unless the archive holds it already
        (the bytes of a body it holds are not even sent); and the SHA-256s stored now.

        In address order: two PostgreSQL transactions storing the same bodies wait for each
        other in one order, never in a cycle (each writes its articles' rows before)."""
        wanted = {body.sha256: body for body in bodies}
        if not wanted:
            return {}, set()
        found = sa.select(col(CaptureBody.sha256), col(CaptureBody.id))
        ids = dict(conn.execute(found.where(col(CaptureBody.sha256).in_(sorted(wanted)))).all())
        new = sorted(set(wanted) - set(ids))
        if new:
            rows = [{"sha256": k, "size": wanted[k].size, "body": wanted[k].data} for k in new]
            conn.execute(self._new_body, rows)
            ids |= dict(conn.execute(found.where(col(CaptureBody.sha256).in_(new))).all())
        return ids, set(new)

    def capture_body(self, capture: Capture) -> bytes:
        """The page a capture kept, as it was received (its Content-Encoding undone), whatever
        its storage: the body it shares (``body_id``) or, for captures made before revision
        0015, its own inline zlib stream. Every reader of captures goes through here.

        `StoreError` when the body cannot be read (damaged, or gone), naming the capture."""
        what = f"capture {capture.id} of article {capture.article_id}"
        if capture.body_id is None:
            return unpack(capture.body, what=what)
        query = sa.select(col(CaptureBody.body)).where(col(CaptureBody.id) == capture.body_id)
        with self._session() as session:
            data = session.execute(query).scalar()
        if data is None:
            raise StoreError(f"{what}: its body {capture.body_id} is not in capture_bodies")
        return unpack(data, what=what)

    def storage(self) -> dict[str, Any]:
        """What the archive takes, for `ingest stats`: its bytes (SQLite: the file, of which
        ``free_bytes`` unused pages; PostgreSQL: its tables with their indexes), per article,
        and the raw captures' share (their compressed bodies, shared ones counted once).

        Reads every capture's row (not its body): about a second per 500,000 on SQLite once
        cached, which is why the web's overview does not show it."""
        captures, bodies = Capture.__table__, CaptureBody.__table__  # type: ignore[attr-defined]
        with self._session() as session:
            conn = session.connection()
            if self.postgres:
                total = conn.exec_driver_sql(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                ).scalar()
                free = None
            else:
                size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
                total = size * (conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
                free = size * (conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
            articles = conn.execute(sa.select(sa.func.count()).select_from(Article)).scalar()
            inline = conn.execute(
                sa.select(sa.func.count(), sa.func.sum(sa.func.length(captures.c.body)))
            ).one()
            shared = conn.execute(
                sa.select(sa.func.count(), sa.func.sum(sa.func.length(bodies.c.body)))
            ).one()
        total, kept = int(total or 0), int(inline[1] or 0) + int(shared[1] or 0)
        return {
            "archive_bytes": total,
            "free_bytes": free,
            "bytes_per_article": round(total / articles) if articles else None,
            "captures": inline[0],
            "capture_bodies": shared[0],
            "captures_bytes": kept,
            "captures_share": round(kept / total, 3) if total else None,
        }

    def pack_captures(
        self, *, batch: int = PACK_BATCH, progress: Callable[[Packed], None] | None = None
    ) -> Packed:
        """Move the bodies of captures made before revision 0015 (inline zlib streams) into
        ``capture_bodies``, each body once, compressed as new ones are; a batch per
        transaction. Interrupted, the next run carries on with the captures still inline; a
        body that cannot be read stays where it is, and is reported."""
        done = Packed()
        captures = Capture.__table__.c  # type: ignore[attr-defined]
        old = (
            sa.select(captures.id, captures.article_id, captures.body)
            .where(captures.body_id.is_(None))
            .order_by(captures.id)
            .limit(batch)
        )
        point = (
            sa.update(Capture.__table__)  # type: ignore[attr-defined]
            .where(captures.id == sa.bindparam("capture"), captures.body_id.is_(None))
            .values(body_id=sa.bindparam("shared"), body=b"")
        )
        last = 0
        while True:
            with self._session() as session:
                conn = session.connection()
                rows = conn.execute(old.where(captures.id > last)).all()
                if not rows:
                    return done
                last = rows[-1].id
                packed: dict[int, PackedBody] = {}
                for row in rows:
                    what = f"capture {row.id} of article {row.article_id}"
                    try:
                        body = unpack(row.body, what=what)
                    except StoreError as error:
                        done.damaged[row.id] = str(error)
                        continue
                    packed[row.id] = pack(body)
                    done.bytes_before += len(row.body)
                ids, added = self._body_ids(conn, packed.values())
                if packed:
                    conn.execute(
                        point,
                        [{"capture": c, "shared": ids[p.sha256]} for c, p in packed.items()],
                    )
                session.commit()
            done.captures += len(packed)
            done.bodies += len(added)
            done.bytes_after += sum(
                {p.sha256: len(p.data) for p in packed.values() if p.sha256 in added}.values()
            )
            if progress:
                progress(done)

    def recompress_bodies(
        self,
        *,
        level: int = PACK_LEVEL,
        batch: int = PACK_BATCH,
        progress: Callable[[Recompressed], None] | None = None,
    ) -> Recompressed:
        """Recompress the shared bodies kept as they came (zlib streams of a server's gzip,
        `ingest.captures.as_zlib`) as zstd frames at ``level``, where that is smaller; a
        batch per transaction. A body's address and size do not change: captures pointing at
        it read the same page. Interrupted, the next run carries on where it stopped."""
        done = Recompressed()
        bodies = CaptureBody.__table__.c  # type: ignore[attr-defined]
        magic = sa.bindparam("magic", ZSTD_MAGIC, type_=sa.LargeBinary)
        kept = (
            sa.select(bodies.id, bodies.body)
            .where(bodies.id > sa.bindparam("last"), sa.func.substr(bodies.body, 1, 4) != magic)
            .order_by(bodies.id)
            .limit(batch)
        )
        rewrite = (
            sa.update(CaptureBody.__table__)  # type: ignore[attr-defined]
            .where(bodies.id == sa.bindparam("body_id"))
            .values(body=sa.bindparam("data"))
        )
        last = 0
        while True:
            with self._session() as session:
                conn = session.connection()
                rows = conn.execute(kept, {"last": last}).all()
                if not rows:
                    return done
                last = rows[-1].id
                smaller = []
                for row in rows:
                    try:
                        data = recompress(unpack(row.body, what=f"body {row.id}"), level)
                    except StoreError as error:
                        done.damaged[row.id] = str(error)
                        continue
                    if len(data) < len(row.body):
                        smaller.append({"body_id": row.id, "data": data})
                        done.bytes_before += len(row.body)
                        done.bytes_after += len(data)
                if smaller:
                    conn.execute(rewrite, smaller)
                session.commit()
            done.bodies += len(smaller)
            if progress:
                progress(done)
