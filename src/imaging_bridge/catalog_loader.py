"""Reading a catalog description file (YAML or JSON) and applying it."""

import json
from importlib import resources
from pathlib import Path

import yaml

from application.catalog import Catalog, CatalogChange
from application.catalog_file import parse_catalog
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
    return decode(text, json_hint=path.suffix.lower() == ".json")


def decode(text: str, *, json_hint: bool = False) -> object:
    try:
        return json.loads(text) if json_hint else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InvalidValueError(f"not valid {'JSON' if json_hint else 'YAML'}: {error}") from error


def load_catalog(catalog: Catalog, document: object, source: str) -> CatalogChange:
    return catalog.apply(parse_catalog(document), system_actor(source=source))
