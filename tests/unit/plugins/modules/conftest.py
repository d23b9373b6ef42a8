# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the module tests."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.llmops.vllm.tests.unit.plugins.modules.grafana_fake import FakeGrafana


@pytest.fixture
def fake():
    """A fresh in-memory Grafana (grafana_fake.FakeGrafana) with token ``good-token``."""
    return FakeGrafana()
