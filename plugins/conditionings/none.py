"""``none``: no conditioning; G and D ignore the labels."""

import gantk
from gantk.conditioning import Conditioning


def build_none(spec) -> Conditioning:
    """No conditioning: G and D ignore labels."""
    return Conditioning(spec.num_classes)


@gantk.hookimpl
def register_conditionings(register):
    register("none", build_none)
