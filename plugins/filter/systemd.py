# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command lines of systemd units, quoted as systemd reads them.

``systemd_exec_args`` joins a list of arguments into the text after
``ExecStart=<binary>``. systemd splits that text at whitespace, removes quotes,
expands ``%`` specifiers and ``$VAR`` references and reads C escapes inside
quotes (systemd.service(5), "Command lines"; systemd.unit(5), "Specifiers").
Each argument is written so that systemd hands the process exactly that
string: ``%`` becomes ``%%``, ``$`` becomes ``$$``, and an argument holding
whitespace, a quote, a backslash or a semicolon is put in double quotes with
``\\``, ``\\"`` and C escapes for control characters. An argument that needs
none of this is written as it is, so the units of existing inputs do not
change. Roles still refuse such values in their preflight; this is the second
line of defence, and it keeps a ``%`` in a URL from breaking the unit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

# Characters that make systemd read an argument differently unless quoted.
_NEEDS_QUOTES = re.compile(r"[\s\"'\\;]|^$|[\x00-\x1f\x7f]")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _quote(arg):
    if not isinstance(arg, string_types) and not isinstance(arg, (int, float)):
        raise AnsibleFilterError("systemd_exec_args: %r is not a string or a number" % (arg,))
    text = str(arg)
    if "\x00" in text:
        raise AnsibleFilterError("systemd_exec_args: an argument holds a NUL byte, which no command line can carry")
    text = text.replace("%", "%%").replace("$", "$$")
    if not _NEEDS_QUOTES.search(text):
        return text
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return '"%s"' % "".join(out)


def systemd_exec_args(args):
    """The arguments of an ExecStart= line, each one read back by systemd as given."""
    if isinstance(args, string_types) or not is_sequence(args):
        raise AnsibleFilterError("systemd_exec_args expects a list of arguments, got %r" % (args,))
    return " ".join(_quote(a) for a in args)


class FilterModule(object):
    def filters(self):
        return {"systemd_exec_args": systemd_exec_args}
