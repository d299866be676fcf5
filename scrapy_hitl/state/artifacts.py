"""Evidence files kept with an intervention (screenshot, rendered HTML, response body).

The intervention's ``evidence["artifacts"]`` maps each kind to its artifact's metadata, so
pages and the API know what exists without loading the bytes. A newer capture of the same
kind replaces the older one: an intervention keeps one of each.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from scrapy_hitl.state.crawler_models import iso
from scrapy_hitl.state.incident_models import ARTIFACT_KINDS, Artifact, Intervention

if TYPE_CHECKING:
    from scrapy_hitl.state.db import Database

# Already-compressed formats gain nothing from gzip.
_STORED_AS_IS = ("image/png", "image/jpeg", "image/webp")


class ArtifactNotFound(LookupError):
    """No artifact of that kind for that intervention (the API answers 404)."""


def attach(db: Database, intervention_id: int, files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
    """Store ``files`` (kind -> (content type, bytes)) with the intervention, replacing
    earlier ones of the same kinds. Returns the intervention's new ``evidence["artifacts"]``."""
    unknown = set(files) - set(ARTIFACT_KINDS)
    if unknown:
        raise ValueError(f"Unknown artifact kinds {sorted(unknown)}; use {', '.join(ARTIFACT_KINDS)}")
    with db.session(locked=True) as s:
        row = s.get(Intervention, intervention_id, with_for_update=True)
        if row is None:
            raise ArtifactNotFound(f"No intervention {intervention_id}")
        s.execute(delete(Artifact).where(
            Artifact.intervention_id == intervention_id, Artifact.kind.in_(list(files))))
        meta = dict((row.evidence or {}).get("artifacts") or {})
        for kind, (content_type, data) in files.items():
            compress = not content_type.startswith(_STORED_AS_IS)
            artifact = Artifact(
                intervention_id=intervention_id, kind=kind, content_type=content_type,
                encoding="gzip" if compress else "identity", size=len(data),
                data=gzip.compress(data, compresslevel=6) if compress else data,
            )
            s.add(artifact)
            s.flush()
            meta[kind] = {"id": artifact.id, "content_type": content_type, "size": len(data),
                          "created_at": iso(artifact.created_at)}
        row.evidence = {**(row.evidence or {}), "artifacts": meta}
        return meta


def load(db: Database, intervention_id: int, kind: str) -> tuple[str, bytes]:
    """(content type, bytes) of the intervention's artifact of ``kind``."""
    with db.session() as s:
        artifact = s.scalars(select(Artifact).where(
            Artifact.intervention_id == intervention_id, Artifact.kind == kind)).first()
        if artifact is None:
            raise ArtifactNotFound(f"Intervention {intervention_id} has no {kind}")
        data = gzip.decompress(artifact.data) if artifact.encoding == "gzip" else artifact.data
        return artifact.content_type, data
