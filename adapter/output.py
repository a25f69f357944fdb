"""Writing mapped FHIR to files: one Bundle per client (JSON or XML), or Bulk-Data-style NDJSON per type.

Every file is written to a temporary name and renamed into place, so a failed run never leaves a partial file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from adapter import fhir
from adapter.errors import OutputError
from adapter.fhirxml.writer import to_xml
from adapter.pipeline import MappedChart

Format = Literal["json", "xml", "ndjson"]


def atomic_write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def bundle_bytes(mapped: MappedChart, fmt: Literal["json", "xml"]) -> bytes:
    if fmt == "xml":
        return to_xml(mapped.bundle, pretty=True)
    return fhir.dumps(mapped.bundle, pretty=True, newline=True)


def write_bundle(mapped: MappedChart, out_dir: Path, fmt: Literal["json", "xml"]) -> Path:
    path = out_dir / f"{mapped.client_id}.{fmt}"
    atomic_write(path, bundle_bytes(mapped, fmt))
    return path


class NdjsonWriter:
    """Bulk Data style: one `<ResourceType>.ndjson` per type across all clients; shared resources (practitioners,
    organizations) once. Files appear under their final names only when the writer closes without error."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._files: dict[str, tuple[Path, IO[bytes]]] = {}
        self._seen: set[tuple[str, str]] = set()
        self.counts: dict[str, int] = {}

    def __enter__(self) -> NdjsonWriter:
        return self

    def write(self, mapped: MappedChart) -> None:
        for resource in mapped.resources:
            key = (resource["resourceType"], resource["id"])
            if key in self._seen:
                continue
            self._seen.add(key)
            self._file(key[0]).write(fhir.dumps(resource, newline=True))
            self.counts[key[0]] = self.counts.get(key[0], 0) + 1

    def _file(self, resource_type: str) -> IO[bytes]:
        if resource_type not in self._files:
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.out_dir, prefix=f".{resource_type}.", suffix=".part")
            except OSError as exc:
                raise OutputError(f"cannot write to {self.out_dir}: {exc.strerror or exc}") from exc
            self._files[resource_type] = (Path(tmp), os.fdopen(fd, "wb", buffering=1 << 20))
        return self._files[resource_type][1]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for resource_type, (tmp, fh) in sorted(self._files.items()):
            fh.close()
            if exc_type is None:
                os.replace(tmp, self.out_dir / f"{resource_type}.ndjson")
            else:
                tmp.unlink(missing_ok=True)
