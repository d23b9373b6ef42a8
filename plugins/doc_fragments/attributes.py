# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The module attributes shared by the modules of llmops.vllm.

    ``llmops.vllm.attributes`` describes check_mode and diff_mode; each module
    states its own ``support`` (and ``details``) under ``attributes:``, which
    Ansible merges with these descriptions. The other fragments are complete
    attribute sets for a kind of module.
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(diff_mode)), when in diff mode.
"""

    # llmops.vllm.attributes.info_module: modules that only read
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This module never changes anything, so it runs the same in check mode.
  diff_mode:
    support: none
"""

    # llmops.vllm.attributes.facts: modules that return ansible_facts
    FACTS = r"""
options: {}
attributes:
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
    support: full
"""

    # llmops.vllm.attributes.action: modules with an action plugin of the same name
    ACTION = r"""
options: {}
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
"""
