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
