"""UPN generation: deterministic, ASCII-safe, within Graph's limits."""

from itertools import islice

from domain.lifecycle.upn import MAX_LOCAL_PART, mail_nickname_candidates, upn_for


def test_plain_name() -> None:
    assert next(mail_nickname_candidates("Ada", "Lovelace", "E1")) == "ada.lovelace"


def test_clashes_get_numbered_candidates_in_a_fixed_order() -> None:
    first = list(islice(mail_nickname_candidates("Sam", "Taylor", "E1"), 4))
    again = list(islice(mail_nickname_candidates("Sam", "Taylor", "E2"), 4))
    assert first == again == ["sam.taylor", "sam.taylor2", "sam.taylor3", "sam.taylor4"]


def test_accents_apostrophes_and_spaces_are_folded() -> None:
    assert next(mail_nickname_candidates("Zoë", "O'Brien-Ünal", "E1")) == "zoe.obrien-unal"
    assert next(mail_nickname_candidates("Mary Ann", "van der Berg", "E1")) == "maryann.vanderberg"


def test_name_without_ascii_falls_back_to_employee_id() -> None:
    assert next(mail_nickname_candidates("李", "小龙", "E-77")) == "e-77"


def test_every_candidate_fits_graphs_limit() -> None:
    long_name = "x" * 80
    for candidate in islice(mail_nickname_candidates(long_name, long_name, "E1"), 12):
        assert len(candidate) <= MAX_LOCAL_PART
    assert list(islice(mail_nickname_candidates(long_name, "y", "E1"), 2))[1].endswith("2")


def test_upn_lowercases_domain() -> None:
    assert upn_for("ada.lovelace", "Contoso.Example.COM") == "ada.lovelace@contoso.example.com"
