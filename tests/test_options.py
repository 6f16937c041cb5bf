"""gantk.options: the published validators plugin factories call on their options."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gantk
from gantk.options import as_bool, choice, number_in, positive_int, positive_ints

OWNER = "generator 'dcgan'"


def test_the_validators_are_reachable_from_the_gantk_package():
    assert gantk.options.positive_int is positive_int


@given(st.booleans())
def test_bools_are_refused_where_numbers_are_expected(value):
    with pytest.raises(gantk.UsageError, match=rf"^The generator 'dcgan' option 'width' must be a positive integer, "
                                               rf"got {value}\.$"):
        positive_int(OWNER, "width", value)
    with pytest.raises(gantk.UsageError, match="'hidden' must be one or more positive integers"):
        positive_ints(OWNER, "hidden", (8, value))
    with pytest.raises(gantk.UsageError, match=r"'dropout' must be a rate in \[0, 1\)"):
        number_in(OWNER, "dropout", value, at_least=0, below=1, what="a rate")


@given(st.integers())
def test_positive_int_takes_whole_numbers_from_one(value):
    if value >= 1:
        assert positive_int(OWNER, "width", value) == value
        assert positive_int(OWNER, "width", str(value)) == value  # a config or preset may hold the text
    else:
        with pytest.raises(gantk.UsageError, match="must be a positive integer"):
            positive_int(OWNER, "width", value)


@pytest.mark.parametrize("value", [2.5, 2.0, "2.5", "", None, "many", [4]])
def test_positive_int_refuses_what_is_not_a_whole_number(value):
    with pytest.raises(gantk.UsageError, match="'z_dim' must be a positive integer"):
        positive_int(OWNER, "z_dim", value)


def test_positive_ints_reads_lists_tuples_and_comma_text():
    assert positive_ints(OWNER, "hidden", "128, 256") == positive_ints(OWNER, "hidden", (128, 256)) == [128, 256]
    assert positive_ints(OWNER, "hidden", 64) == [64]
    for bad in ((), "", "8,x", (8, 0)):
        with pytest.raises(gantk.UsageError, match="one or more positive integers such as 128,256"):
            positive_ints(OWNER, "hidden", bad)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_number_in_honours_open_and_closed_ends(value):
    closed_ok = 0.0 <= value <= 1.0
    half_open_ok = 0.0 < value < 1.0
    if closed_ok:
        assert number_in(OWNER, "p", value, at_least=0, at_most=1) == value
    else:
        with pytest.raises(gantk.UsageError, match=r"must be a number in \[0, 1\], got"):
            number_in(OWNER, "p", value, at_least=0, at_most=1)
    if half_open_ok:
        assert number_in(OWNER, "p", value, above=0, below=1) == value
    else:
        with pytest.raises(gantk.UsageError, match=r"must be a number in \(0, 1\), got"):
            number_in(OWNER, "p", value, above=0, below=1)


def test_number_in_range_ends_and_one_sided_ranges():
    assert number_in(OWNER, "p", 0, at_least=0, below=1) == 0.0
    assert number_in(OWNER, "p", "0.5", above=0) == 0.5  # numeric text is read
    assert number_in(OWNER, "t", math.inf, above=0) == math.inf
    with pytest.raises(gantk.UsageError, match=r"'p' must be a rate in \[0, 1\), got 1\.$"):
        number_in(OWNER, "p", 1, at_least=0, below=1, what="a rate")
    with pytest.raises(gantk.UsageError, match=r"'t' must be a number > 0 \(t in exp\(s/t\)\), got 0\.0\.$"):
        number_in(OWNER, "t", 0.0, above=0, hint="t in exp(s/t)")
    with pytest.raises(gantk.UsageError, match=r"must be a number ≤ 10, got 'ten'"):
        number_in(OWNER, "t", "ten", at_most=10)
    with pytest.raises(gantk.UsageError, match="must be a number, got nan"):
        number_in(OWNER, "t", math.nan)
    with pytest.raises(TypeError):
        number_in(OWNER, "t", 1, at_least=0, above=0)  # a programming error, not a user's


def test_choice_suggests_the_valid_values():
    norms = ("batch", "none", "layer", "instance")
    assert choice(OWNER, "norm", " Batch ", norms) == "batch"
    assert choice(OWNER, "norm", None, norms) == "none"  # -D norm=none parses to None
    with pytest.raises(gantk.UsageError) as caught:
        choice(OWNER, "norm", "btach", norms)
    assert str(caught.value) == ("The generator 'dcgan' option 'norm' must be one of batch, none, layer, instance, "
                                 "got 'btach'. Did you mean: batch?")
    with pytest.raises(gantk.UsageError, match=r"must be one of batch, none, layer, instance, got 'group'\.$"):
        choice(OWNER, "norm", "group", norms)


def test_choice_of_numbers_does_not_take_a_bool_for_one():
    assert choice("data set 'folder'", "channels", 3, (1, 3)) == 3
    expected = r"'channels' must be one of 1, 3 \(1 for grayscale, 3 for RGB\), got True"
    with pytest.raises(gantk.UsageError, match=expected):
        choice("data set 'folder'", "channels", True, (1, 3), hint="1 for grayscale, 3 for RGB")


@pytest.mark.parametrize("value, expected", [(True, True), ("off", False), ("Yes", True), (0, False), (1, True)])
def test_as_bool_reads_words_and_zero_one(value, expected):
    assert as_bool(OWNER, "spectral_norm", value) is expected


@pytest.mark.parametrize("value", [2, "maybe", None, 0.5])
def test_as_bool_refuses_anything_else(value):
    with pytest.raises(gantk.UsageError, match="'spectral_norm' must be true or false"):
        as_bool(OWNER, "spectral_norm", value)
