"""Step 3a, redact (pure): withhold what was denied and remove every trace of it from what is released.

- A released resource whose patient, subject, focus or a FHIR-required reference points at withheld data is
  withheld too (cascade, until nothing changes).
- Other references to withheld or absent data are removed element-aware (CarePlan.addresses, reasonReference,
  supportingInfo, hasMember, Provenance.target ...); a backbone element or extension left empty goes with them.
- A resource that lost anything gets a regenerated narrative (title/status only), never the original text.
- A Consent is released only as the copy of the consent (42 CFR 2.32(b)) and goes out as signed: never pruned,
  its narrative kept. A reference of it to withheld data becomes a logical reference (:func:`logical_references`).
- Organizations and practitioners are released only when a released resource references them.

All rebuilds are shallow and only along the changed path: inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from adapter.consent.graph import Graph, Node, Ref, reference_key, scan
from adapter.consent.vocab import load_yaml
from adapter.fhir import Resource
from adapter.mappings import narrative
from adapter.schema.definitions import element_map

_DROP = object()  # sentinel: this object cannot stay (lost a required element, or emptied)
_CONTENTLESS = {"id", "extension", "modifierExtension"}


@dataclass(frozen=True)
class Redaction:
    released: tuple[str, ...]  # keys in Bundle order
    resources: Mapping[str, Resource]  # key -> released (pruned) resource
    cascaded: Mapping[str, str]  # key -> why: the withheld target it depended on
    pruned: Mapping[str, tuple[str, ...]]  # key -> the references removed from it (made logical in a consent copy)
    unreferenced: tuple[str, ...]  # directory entries left out


@cache
def cascade_elements() -> frozenset[str]:
    return frozenset(str(e["name"]) for e in load_yaml("propagation.yaml")["cascade_elements"])


def _gone_fn(graph: Graph, kept: set[str]) -> Callable[[Any], bool]:
    by_full_url = {n.full_url: n.key for n in graph if n.full_url}

    def gone(reference: Any) -> bool:
        if not isinstance(reference, Mapping):
            return False
        text = reference.get("reference")
        if not isinstance(text, str) or text.startswith("#"):
            return False  # logical (identifier-only) and contained references never dangle
        key = reference_key(text, by_full_url)
        return key is None or key not in kept

    return gone


def prune(value: dict[str, Any], type_name: str, gone: Callable[[Any], bool], root: bool = False) -> Any:
    """`value` without references for which `gone` is true; the same object when nothing changed; _DROP when it
    cannot stand without what was removed (a required element, a cascade element at the root, or nothing left)."""
    elements = element_map(type_name)
    out: dict[str, Any] = {}
    changed = False
    for name, item in value.items():
        element = elements.get(name)
        if element is None or element.is_primitive or element.type == "Resource" or name == "meta":
            out[name] = item
            continue
        critical = element.required or (root and name in cascade_elements())
        if isinstance(item, list):
            kept = []
            for member in item:
                new = _prune_member(member, element.type, gone)
                if new is not member:
                    changed = True
                if new is not _DROP:
                    kept.append(new)
            if not kept and item:
                if critical:
                    return _DROP
                continue
            out[name] = kept
        else:
            new = _prune_member(item, element.type, gone)
            if new is not item:
                changed = True
            if new is _DROP:
                if critical:
                    return _DROP
                continue
            out[name] = new
    if not changed:
        return value
    if type_name == "Extension" and not any(k.startswith("value") or k == "extension" for k in out):
        return _DROP  # ext-1: an extension keeps a value or nested extensions
    if not root and set(out) <= _CONTENTLESS:
        return _DROP
    return out


def _prune_member(member: Any, type_name: str, gone: Callable[[Any], bool]) -> Any:
    if not isinstance(member, dict):
        return member
    if type_name == "Reference":
        return _DROP if gone(member) else member
    return prune(member, type_name, gone)


URI_SYSTEM = "urn:ietf:rfc:3986"


def logical_references(
    value: Any, gone: Callable[[Any], bool], absolute: Callable[[str], str | None], top: bool = True
) -> Any:
    """`value` with every Reference for which `gone` is true turned into a logical reference: its literal
    `reference` is left out and the same target is named in `identifier` (system urn:ietf:rfc:3986, the target's
    absolute URL as `absolute` gives it; the reference as written when there is none), with `type` from it.
    Everything else, narrative included, is kept as it is. The same object when nothing changed.

    R4 Reference.identifier is meant for a target that "is not available through a FHIR server": the recipient
    cannot resolve it, yet the copy still says, in the words it was signed with, which record it names."""
    if isinstance(value, list):
        items = [logical_references(v, gone, absolute, False) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if not isinstance(value, dict):
        return value
    text = value.get("reference")
    if isinstance(text, str) and gone(value):
        out = {k: v for k, v in value.items() if k != "reference"}
        key = reference_key(text, {})
        if "type" not in out and key is not None:
            out["type"] = key.partition("/")[0]
        if "identifier" not in out:
            url = absolute(text)
            out["identifier"] = {"system": URI_SYSTEM, "value": url} if url else {"value": text}
        return out
    changed = {
        name: new
        for name, item in value.items()
        if not (top and name == "meta") and (new := logical_references(item, gone, absolute, False)) is not item
    }
    return {k: changed.get(k, v) for k, v in value.items()} if changed else value


def regenerated_text(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A narrative generated from what is left: title (or type) and status. The original text may describe
    what was withheld, so it is never kept."""
    title = resource.get("title") or resource.get("resourceType")
    status = resource.get("status")
    blocks = [narrative.heading(str(title))]
    if status:
        blocks.append(narrative.paragraph(f"Status: {status}."))
    return narrative.generated(*blocks)


def _dependencies(node: Node, kept: set[str]) -> str | None:
    """The withheld target of a cascade element (subject, patient, focus) at the resource root, if any."""
    for ref in node.references:
        if ref.target not in kept and _is_cascade_path(ref.path) and not ref.reference.startswith("#"):
            return ref.target or ref.reference
    return None


@lru_cache(maxsize=1 << 12)
def _is_cascade_path(path: str) -> bool:
    """ "Observation.subject": a cascade element at the resource root."""
    return path.count(".") == 1 and path.split(".")[1] in cascade_elements()


def _gone(ref: Ref, kept: set[str]) -> bool:
    """`_gone_fn(graph, kept)` for a reference the graph resolved already (its target is reference_key's)."""
    return not ref.reference.startswith("#") and (ref.target is None or ref.target not in kept)


def redact(graph: Graph, resources: Mapping[str, Resource], permitted: set[str]) -> Redaction:
    """Release the permitted non-directory entries of `graph` (their labeled versions in `resources`) and the
    directory entries they reference, with every reference to anything else removed."""
    clinical = {n.key for n in graph if not n.is_directory and n.key in permitted}
    kept = clinical | {n.key for n in graph if n.is_directory}
    verbatim = {k for k in clinical if graph.by_key[k].resource_type == "Consent"}  # copies of the consent
    cascaded: dict[str, str] = {}
    pruned: dict[str, Resource] = {}
    progress = True
    while progress:
        progress = False
        for key in sorted(clinical - set(cascaded)):
            target = _dependencies(graph.by_key[key], kept)
            if target is not None:
                cascaded[key] = target
                kept.discard(key)
                progress = True
        if progress:
            continue
        gone = _gone_fn(graph, kept)
        pruned = {}
        for key in sorted(clinical - set(cascaded)):
            node = graph.by_key[key]
            if not any(_gone(r, kept) for r in node.references):
                continue
            if key in verbatim:
                pruned[key] = logical_references(resources[key], gone, _absolute_fn(graph, node))
                continue
            result = prune(resources[key], node.resource_type, gone, root=True)
            if result is _DROP:
                cascaded[key] = "a required reference"
                kept.discard(key)
                progress = True
            else:
                pruned[key] = result
    gone = _gone_fn(graph, kept)
    out: dict[str, Resource] = {}
    removed: dict[str, tuple[str, ...]] = {}
    for key in clinical - set(cascaded):
        resource = pruned.get(key, resources[key])
        if key in pruned:
            removed[key] = tuple(r.reference for r in graph.by_key[key].references if _gone(r, kept))
            if "text" in resource and key not in verbatim:
                resource = {k: (regenerated_text(resource) if k == "text" else v) for k, v in resource.items()}
        out[key] = resource
    directory = _directory_closure(graph, set(out), out, set(pruned))
    for key in directory:
        out[key] = resources[key]
    released = tuple(n.key for n in graph if n.key in out)
    unreferenced = tuple(n.key for n in graph if n.is_directory and n.key not in directory)
    return Redaction(released, out, cascaded, removed, unreferenced)


def _absolute_fn(graph: Graph, node: Node) -> Callable[[str], str | None]:
    """The absolute URL a reference written in `node` names: as written when absolute, else the target entry's
    fullUrl, else resolved against the base of `node`'s own fullUrl (FHIR's rule for relative references)."""

    def absolute(text: str) -> str | None:
        if text.startswith(("http://", "https://", "urn:")):
            return text
        target = graph.get(reference_key(text, {}))
        if target is not None and target.full_url:
            return target.full_url
        own = node.full_url or ""
        suffix = f"/{node.key}"
        if own.startswith(("http://", "https://")) and own.endswith(suffix):
            return f"{own[: -len(suffix)]}/{text}"
        return None

    return absolute


def _directory_closure(graph: Graph, roots: set[str], released: Mapping[str, Resource], pruned: set[str]) -> set[str]:
    """Directory entries referenced by the released resources (after pruning) and by each other (partOf). A
    resource that was not pruned has the references the graph found in it; a pruned one is walked again."""
    by_full_url = {n.full_url: n.key for n in graph if n.full_url}
    pending = list(roots)
    found: set[str] = set()
    while pending:
        key = pending.pop()
        if key in pruned:
            targets = [reference_key(text, by_full_url) for _, text in scan(released[key])[1]]
        else:
            node = graph.get(key)
            targets = [r.target for r in node.references] if node is not None else []
        for target in targets:
            node = graph.get(target)
            if node is not None and node.is_directory and node.key not in found:
                found.add(node.key)
                pending.append(node.key)
    return found
