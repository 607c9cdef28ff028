"""The README's claims that the suite can check: every test its table of faults names exists, and
the number of checked keys it states is the validation table's."""

import re

from src.utils.resolvers import PROJECT_ROOT
from src.utils.validate import RULES

README = (PROJECT_ROOT / "README.md").read_text()


def test_every_test_the_readme_names_exists():
    named = re.findall(r"`(tests/\w+\.py)::(\w+)`", README)
    assert len(named) >= 20
    for path, name in named:
        source = (PROJECT_ROOT / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{path}::{name} is named in README.md"


def test_the_number_of_checked_keys_is_the_validation_tables():
    assert f"any of the {len(RULES)} checked keys" in README
