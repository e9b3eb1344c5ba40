"""The VAPID key a process signs pushes with and gives browsers (``vapid_of``): the
configured one, else one kept in the data folder (made once, then the same every time,
also when two processes make it at once); an unreadable configured key is refused
without showing it."""

import threading

import pytest
from py_vapid import Vapid

from adapters.channels.vapid_keys import (
    KEY_FILE,
    VapidKeyError,
    application_server_key,
    vapid_of,
)
from adapters.settings import Settings

pytestmark = pytest.mark.integration


def test_the_development_key_is_made_once_in_the_data_folder(tmp_path):
    settings = Settings(environment="test", data_dir=tmp_path)
    first = vapid_of(settings)
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert application_server_key(vapid_of(settings)) == application_server_key(first)


def test_processes_starting_together_share_one_key(tmp_path):
    settings = Settings(environment="test", data_dir=tmp_path)
    keys: list[str] = []
    threads = [
        threading.Thread(target=lambda: keys.append(application_server_key(vapid_of(settings))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1


def test_a_configured_key_wins(tmp_path):
    configured = Vapid()
    configured.generate_keys()
    pem = configured.private_pem().decode()
    settings = Settings(environment="test", data_dir=tmp_path, vapid_private_key=pem)
    assert application_server_key(vapid_of(settings)) == application_server_key(configured)
    assert not (tmp_path / KEY_FILE).exists()


def test_an_unreadable_configured_key_is_refused_without_showing_it(tmp_path):
    settings = Settings(environment="test", data_dir=tmp_path, vapid_private_key="not-a-key-42")
    with pytest.raises(VapidKeyError) as refused:
        vapid_of(settings)
    assert "not-a-key-42" not in str(refused.value)
