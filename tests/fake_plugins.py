"""Source code of small plugin modules that the tests install as fake packages."""

GOOD_PLUGIN = """
import gantk

@gantk.hookimpl
def register_generators(register):
    register("fakegen", lambda spec, **kw: "a fake generator", summary="A generator from a fake package")
"""

BROKEN_PLUGIN = """
import gantk_dependency_that_is_not_installed
"""
