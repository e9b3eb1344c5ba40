"""A data folder the embedded PostgreSQL cannot use is a one-line StartupError naming
it (``migrate --data-dir`` of a file was a FileExistsError traceback)."""

import pytest

from adapters.database import start_embedded
from adapters.startup import StartupError


def test_a_data_dir_that_is_a_file_is_refused_in_one_line(tmp_path):
    # given a path that is a file
    path = tmp_path / "not-a-folder"
    path.write_text("")
    # when the embedded server is started there, then it is refused naming the path
    with pytest.raises(StartupError) as refused:
        start_embedded(path)
    assert str(refused.value) == f"cannot use {path} as the data folder: a file is there"


def test_a_data_dir_under_a_file_is_refused_too(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StartupError, match="as the data folder: Not a directory"):
        start_embedded(tmp_path / "file" / "data")
