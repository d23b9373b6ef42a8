# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest setup for the unit tests of llmops.vllm.

Puts <repo root>/collections on sys.path, so that the committed link
collections/ansible_collections/llmops/vllm -> ../../.. makes this checkout
importable as ``ansible_collections.llmops.vllm``. Under ``ansible-test units``
the collection is already importable and this changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

import pytest

UNIT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(UNIT_DIR))
COLLECTIONS_DIR = os.path.join(REPO_ROOT, 'collections')
FIXTURES_DIR = os.path.join(UNIT_DIR, 'fixtures')

if os.path.isdir(os.path.join(COLLECTIONS_DIR, 'ansible_collections')) and COLLECTIONS_DIR not in sys.path:
    sys.path.insert(0, COLLECTIONS_DIR)


def read_fixture(name):
    """Text of tests/unit/fixtures/<name>."""
    with open(os.path.join(FIXTURES_DIR, name), 'r', encoding='utf-8') as handle:
        return handle.read()


@pytest.fixture
def fixture_text():
    """The reader of tests/unit/fixtures files, as a fixture."""
    return read_fixture


@pytest.fixture
def v1_metrics_text():
    """/metrics of vLLM 0.32.0 (V1 engine, CPU build), model served as "tiny"."""
    return read_fixture('vllm-0.32.0-cpu-metrics.txt')


@pytest.fixture
def v0_metrics_text():
    """/metrics in the V0 naming of the old docs (model_name label only)."""
    return read_fixture('vllm-v0-metrics-from-seed.txt')
