# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each role's interface is declared twice and the two must agree: the variables of
defaults/main.yml and the options of the `main` entry point in meta/argument_specs.yml
(as prometheus-community's lint_arguments_spec.sh checks). Internal names are left out:
those starting with `_` (for a private role such as `_release_archive`, whose public
names carry its `_release_archive_` prefix, those starting with `__`). An option marked
`required: true` has no default, so it may be absent from defaults/main.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = os.path.join(REPO, 'roles')
ALL_ROLES = sorted(name for name in os.listdir(ROLES) if os.path.isdir(os.path.join(ROLES, name)))


def _load(path):
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def _public(role, names):
    prefix = role + '_'
    return set(name for name in names if not name.startswith('_') or (role.startswith('_') and name.startswith(prefix)))


def test_every_role_is_covered():
    assert ALL_ROLES, 'no roles under %s' % ROLES


@pytest.mark.parametrize('role', ALL_ROLES)
def test_defaults_and_argument_specs_name_the_same_variables(role):
    defaults_path = os.path.join(ROLES, role, 'defaults', 'main.yml')
    specs_path = os.path.join(ROLES, role, 'meta', 'argument_specs.yml')
    assert os.path.exists(specs_path), '%s has no meta/argument_specs.yml' % role
    options = (_load(specs_path).get('argument_specs') or {}).get('main', {}).get('options') or {}
    defaults = _load(defaults_path) if os.path.exists(defaults_path) else {}
    declared = _public(role, options)
    required = set(name for name in declared if (options[name] or {}).get('required'))
    in_defaults = _public(role, defaults)
    problems = []
    for name in sorted(in_defaults - declared):
        problems.append('%s is in defaults/main.yml but not in meta/argument_specs.yml (main options)' % name)
    for name in sorted(declared - in_defaults - required):
        problems.append('%s is in meta/argument_specs.yml (main options) but not in defaults/main.yml '
                        '(give it a default there, or mark it required)' % name)
    for name in sorted(required & in_defaults):
        problems.append('%s is required in meta/argument_specs.yml but has a default in defaults/main.yml' % name)
    assert not problems, 'role %s:\n  %s' % (role, '\n  '.join(problems))
