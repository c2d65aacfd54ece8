"""The one split-list parser: commas or sequences, checked against the store's split names."""

from __future__ import annotations

import pytest

from ambiguity.errors import ConfigError
from ambiguity.stores.schema import SPLITS, parse_splits


def test_parse_splits_accepts_commas_and_sequences():
    assert parse_splits("test") == ("test",)
    assert parse_splits(" val, test ,") == ("val", "test")
    assert parse_splits(["val", "test,train"]) == ("val", "test", "train")
    assert parse_splits(("test", "test")) == ("test",)
    assert parse_splits(SPLITS) == SPLITS


@pytest.mark.parametrize("bad", ["", ",", "dev", ["test", "dev"], []])
def test_parse_splits_rejects_unknown_or_no_splits(bad):
    with pytest.raises(ConfigError, match="choose from train, val, test"):
        parse_splits(bad)
