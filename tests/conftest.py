"""Fixtures shared by several test files."""

from tests.deploy_fixtures import tfc_build  # noqa: F401  (one small build per test session)
