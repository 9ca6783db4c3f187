import pytest

from vtax.identity import InvalidIdentity, mask, resident_id_check_char, uscc_check_char, validate


@pytest.mark.parametrize(
    ("id_type", "number"),
    [
        ("uscc", "91350100M000100Y43"),
        ("resident_id", "11010519491231002X"),
        ("resident_id", "11010519491231002x"),
        ("uscc", " 9135 0100 M000 100Y43 "),
    ],
)
def test_valid_numbers_from_the_standards(id_type, number):
    assert validate(id_type, number) == number.replace(" ", "").upper()


def test_check_characters_match_the_design_vectors():
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert resident_id_check_char("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("id_type", "number", "why"),
    [
        ("uscc", "91350100M000100Y44", "check character"),  # wrong check char
        ("uscc", "91350100M000100Y4", "18 characters"),  # too short
        ("uscc", "91350100M0001O0Y43", "18 characters"),  # letter O is not in the alphabet
        ("uscc", "91350100M000100I43", "18 characters"),  # letter I is not either
        ("resident_id", "110105194912310021", "check digit"),
        ("resident_id", "11010519491231002", "17 digits"),
        ("resident_id", "1101051949123100XX", "17 digits"),
        ("resident_id", "", "17 digits"),
        ("passport", "E12345678", "unknown identity type"),
    ],
)
def test_wrong_numbers_are_refused_with_the_reason(id_type, number, why):
    with pytest.raises(InvalidIdentity, match=why):
        validate(id_type, number)


def test_every_single_character_change_of_a_uscc_is_caught():
    from vtax.identity import USCC_ALPHABET

    good = "91350100M000100Y43"
    for i in range(17):
        for c in USCC_ALPHABET:
            if c != good[i]:
                changed = good[:i] + c + good[i + 1 :]
                with pytest.raises(InvalidIdentity):
                    validate("uscc", changed)


def test_mask_keeps_only_the_ends():
    assert mask("91350100M000100Y43") == "9135**********0Y43"
