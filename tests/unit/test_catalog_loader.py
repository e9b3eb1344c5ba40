"""Reading a catalog file: whatever the file holds, an unreadable one is an
InvalidValueError with a message for the operator, never another exception (the CLI
prints the first as one line; anything else was a traceback)."""

import pytest

from domain.errors import InvalidValueError
from imaging_bridge.catalog_loader import read_catalog_file


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("binary.yaml", b"locations: []\n\x00\xff\xfe", "not UTF-8 text: byte 0xff at offset 15"),
        ("deep.yaml", b"a: " + b"[" * 10_000 + b"]" * 10_000, "YAML is nested too deeply"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "JSON is nested too deeply"),
        ("cut.yaml", b"locations: [", "not valid YAML"),
    ],
    ids=["binary", "deep-yaml", "deep-json", "cut-yaml"],
)
def test_an_unreadable_file_is_refused_with_a_message(tmp_path, name, content, message):
    # given a file that is no catalog
    path = tmp_path / name
    path.write_bytes(content)
    # when it is read, then it is refused saying why
    with pytest.raises(InvalidValueError) as refused:
        read_catalog_file(path)
    assert message in refused.value.detail


def test_procedure_codes_are_kept_and_an_entry_without_them_is_unchanged():
    from application.catalog_file import parse_catalog
    from tests.support import demo_specs

    exam = {"code": "ct-x", "name": "CT", "modality": "CT", "cpt": "70450", "duration_minutes": 15}
    with_codes = parse_catalog({"appointment_types": [{**exam, "procedure_codes": [" A1 "]}]})
    without = parse_catalog({"appointment_types": [exam]})
    assert with_codes.appointment_types[0]["procedure_codes"] == ["A1"]
    # A catalog written before procedure codes loads as it always did: no new revision.
    assert "procedure_codes" not in without.appointment_types[0]
    demo = {spec["code"]: spec for spec in demo_specs().appointment_types}
    assert all(spec["procedure_codes"] for spec in demo.values())
    assert "CTCRANE" in demo["ct-head"]["procedure_codes"]
