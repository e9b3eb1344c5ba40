"""Every JSON request body of every router refuses fields it does not know (no mass
assignment, as the README promises), all the way down, and no password is trimmed.

Walks the routers themselves (every module in ``api.routers``), so a new route or a new
router is checked without being listed here."""

import importlib
import pkgutil
import typing
from collections.abc import Iterator

from fastapi import params
from fastapi.routing import APIRoute
from pydantic import BaseModel, create_model

import api.routers

# Bodies that are not models, and why that is safe.
NOT_MODELS = {
    # weekday -> opening spans: the keys are data, and the schedule parser refuses any key
    # that is not a weekday (domain.schedule).
    ("PUT", "/v1/staff/catalog/resources/{code}/hours"),
}


def routes() -> Iterator[APIRoute]:
    for module in pkgutil.iter_modules(api.routers.__path__):
        router = importlib.import_module(f"api.routers.{module.name}").router
        yield from (route for route in router.routes if isinstance(route, APIRoute))


def models_in(annotation: object) -> Iterator[type[BaseModel]]:
    """The models an annotation names, however deeply nested (lists, unions, dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from models_in(field.annotation)
    for argument in typing.get_args(annotation):
        yield from models_in(argument)


def json_bodies() -> dict[tuple[str, str], object]:
    found = {}
    for route in routes():
        body = route.body_field
        # The OAuth2 password form: RFC 6749 (3.2) says to ignore parameters it does not
        # know, and it carries no fields that could be mass-assigned.
        if body is None or isinstance(body.field_info, params.Form):
            continue
        for method in route.methods:
            found[(method, route.path)] = body.field_info.annotation
    return found


def test_the_walk_finds_the_routes_with_bodies():
    bodies = json_bodies()
    assert len(bodies) > 20
    assert ("POST", "/v1/admin/hl7/inbound/{message_id}/replay") in bodies
    assert ("POST", "/v1/patients/register") in bodies


def test_every_request_body_model_forbids_unknown_fields():
    lenient = {}
    not_models = set()
    for where, annotation in json_bodies().items():
        models = list(models_in(annotation))
        if not models:
            not_models.add(where)
        for model in models:
            if model.model_config.get("extra") != "forbid":
                lenient[where] = model.__qualname__
    assert lenient == {}
    assert not_models == NOT_MODELS


def test_no_password_in_a_request_body_is_trimmed():
    passwords = {}
    for annotation in json_bodies().values():
        for model in models_in(annotation):
            for name in model.model_fields:
                if "password" in name:
                    value = " a password with spaces  "
                    passwords[(model.__qualname__, name)] = _kept(model, name, value)
    assert len(passwords) >= 6  # register, staff, change (2), reset, 2fa disable
    assert set(passwords.values()) == {True}, passwords


def _kept(model: type[BaseModel], name: str, value: str) -> bool:
    """Whether ``value`` in field ``name`` comes out of validation as it went in (the one
    field validated on its own, with its model's configuration)."""
    field = model.model_fields[name]
    probe = create_model(
        "Probe", __config__=model.model_config, **{name: (field.annotation, field)}
    )
    return bool(getattr(probe.model_validate({name: value}), name) == value)
