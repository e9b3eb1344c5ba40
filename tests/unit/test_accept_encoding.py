"""Which ``Accept-Encoding`` headers get a slot-search answer gzipped."""

import pytest

from api.routers.slots import accepts_gzip


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip, deflate", True),
        ("deflate, GZIP", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=nonsense", False),
        ("identity", False),
        ("*", False),
        ("", False),
        ("gzipped", False),
    ],
)
def test_gzip_only_when_named_with_a_weight_above_zero(header, gzipped):
    assert accepts_gzip(header) is gzipped
