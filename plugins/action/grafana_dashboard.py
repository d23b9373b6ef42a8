# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of llmops.vllm.grafana_dashboard.

Reads the dashboard file named by ``path`` on the controller (searched like
the ``src`` of ansible.builtin.copy: the role's files/ directory, then the
playbook's) and passes its text to the module as ``content``, so that the
module, which runs where the task runs, never needs the file there. With
``remote_src: true`` the module reads ``path`` itself on its host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        module_args = dict(self._task.args)
        path = module_args.get('path')
        try:
            remote_src = boolean(module_args.get('remote_src', False), strict=True)
        except TypeError as exc:
            result.update(failed=True, msg='remote_src: %s' % to_native(exc))
            return result

        if path is not None and not remote_src:
            if module_args.get('content') is not None:
                result.update(failed=True, msg='path and content are mutually exclusive')
                return result
            try:
                source = self._find_needle('files', path)
                with open(source, 'rb') as handle:
                    module_args['content'] = to_text(handle.read(), errors='surrogate_or_strict')
            except (AnsibleError, IOError, OSError, UnicodeError) as exc:
                result.update(failed=True, msg='Cannot read the dashboard file %s on the controller: %s' % (path, to_native(exc)))
                return result
            module_args['path'] = source

        result.update(self._execute_module(module_name='llmops.vllm.grafana_dashboard', module_args=module_args,
                                           task_vars=task_vars))
        return result
