"""A read-model view composes each change's SQL once per shape (``projections.view``):
changes that differ only in their values share a shape, any other difference does not."""

from projections.changes import Delete, Lookup, Update, Upsert
from projections.view import _shape

CHANGES = [
    Upsert("rm_a", {"id": 1}, {"x": 2, "y": "z"}),
    Upsert("rm_a", {"id": 1}, {"x": 2}),
    Upsert("rm_a", {"id": 1}),
    Upsert("rm_a", {"id": 1}, {"x": Lookup("rm_b", "p", 5)}),
    Upsert("rm_a", {"id": 1}, {"x": Lookup("rm_b", "q", 5)}),
    Upsert("rm_a", {"id": 1}, {"x": Lookup("rm_c", "p", 5)}),
    Update("rm_a", {"id": 1}, {"x": 2}),
    Update("rm_a", {"id": 1, "k": 2}, {"x": 2}),
    Delete("rm_a", {"id": 1}),
    Delete("rm_c", {"id": 1}),
]


def test_changes_of_different_sql_have_different_shapes():
    assert len({_shape(change) for change in CHANGES}) == len(CHANGES)


def test_changes_that_differ_only_in_values_share_a_shape():
    first = Upsert("rm_a", {"id": 1}, {"x": 2, "y": Lookup("rm_b", "p", 5)})
    second = Upsert("rm_a", {"id": 9}, {"x": 7, "y": Lookup("rm_b", "p", 6)})
    assert _shape(first) == _shape(second)
