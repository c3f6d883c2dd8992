"""Which venue kind a FINRA file holds: the param says it; a landing name may only agree."""

from __future__ import annotations

import msgspec
import pytest

from app.finra.datasets import DATASET_OF_KIND, DATASETS, kind_of_file
from app.finra.pipelines import IngestParams
from app.finra.venue_kinds import VENUE_KINDS


def test_each_kind_has_its_dataset_and_each_dataset_its_kind() -> None:
    assert set(DATASET_OF_KIND) == set(VENUE_KINDS)
    assert {d.name for d in DATASET_OF_KIND.values()} == {d.name for d in DATASETS}
    assert DATASET_OF_KIND["ats"].name == "finra_ats_weekly"


def test_landing_names_say_their_kind() -> None:
    assert kind_of_file("finra/finra_ats_weekly_t1_20251215.csv") == "ats"
    assert kind_of_file("finra/finra_otc_weekly_otc_20251215.csv") == "non_ats"
    assert kind_of_file("finra/my_ats_file.csv") is None
    assert kind_of_file("finra_ats_weekly_t1_20251215.csv") is None  # not in the landing area


def test_params_default_to_non_ats_and_refuse_a_name_of_the_other_kind() -> None:
    assert msgspec.convert({"file": "anything.csv"}, IngestParams).venue_kind == "non_ats"
    ats = {"file": "finra/finra_ats_weekly_t2_20251215.csv"}
    assert msgspec.convert({**ats, "venue_kind": "ats"}, IngestParams).venue_kind == "ats"
    with pytest.raises(msgspec.ValidationError, match="pass venue_kind=ats"):
        msgspec.convert(ats, IngestParams)
    otc = {"file": "finra/finra_otc_weekly_otc_20251215.csv", "venue_kind": "ats"}
    with pytest.raises(msgspec.ValidationError, match="pass venue_kind=non_ats"):
        msgspec.convert(otc, IngestParams)
    with pytest.raises(msgspec.ValidationError, match="venue_kind"):
        msgspec.convert({"file": "x.csv", "venue_kind": "dark"}, IngestParams)
