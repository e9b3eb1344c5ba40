"""Reading a catalog description file (YAML or JSON) and applying it."""

import json
from importlib import resources
from pathlib import Path

import yaml

from application.catalog import Catalog, CatalogChange
from application.catalog_file import CatalogSpecs, parse_catalog
from domain.context import system_actor
from domain.errors import InvalidValueError


def demo_catalog_text() -> str:
    return resources.files("imaging_bridge").joinpath("demo/catalog.yaml").read_text()


def read_catalog_file(path: Path) -> object:
    """The decoded document; InvalidValueError with a clear message if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidValueError(f"cannot read {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise InvalidValueError(
            f"not UTF-8 text: byte {error.object[error.start]:#04x} at offset {error.start}"
        ) from error
    return decode(text, json_hint=path.suffix.lower() == ".json")


def decode(text: str, *, json_hint: bool = False) -> object:
    kind = "JSON" if json_hint else "YAML"
    try:
        return json.loads(text) if json_hint else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InvalidValueError(f"not valid {kind}: {error}") from error
    except RecursionError as error:
        raise InvalidValueError(f"not a catalog: the {kind} is nested too deeply") from error


def read_specs(catalog: Catalog, document: object) -> CatalogSpecs:
    """The document's entries as specs; its resources may name locations that are only
    in the catalog already."""
    return parse_catalog(document, catalog.location_timezones())


def load_catalog(catalog: Catalog, document: object, source: str) -> CatalogChange:
    """Create or revise every entry the document lists (one atomic save)."""
    return catalog.apply(read_specs(catalog, document), system_actor(source=source))


def not_listed(catalog: Catalog, specs: CatalogSpecs) -> dict[str, list[str]]:
    """The catalog's entries that ``specs`` does not list, by kind (kept as they are)."""
    listed = {
        "locations": {spec["code"] for spec in specs.locations},
        "resources": {spec["code"] for spec in specs.resources},
        "appointment_types": {spec["code"] for spec in specs.appointment_types},
    }
    return {
        kind: [code for code in codes if code not in listed[kind]]
        for kind, codes in catalog.codes().items()
    }
