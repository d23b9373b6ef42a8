# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module util is private to the llmops.vllm collection. It is not a
# public API: its functions may change between releases without notice.
# Use it only from plugins of this collection.

"""Parser for the Prometheus text exposition format (version 0.0.4).

Pure Python, standard library only. ``parse()`` turns the text into an
dict (in order of appearance) of metric families keyed by family name::

    {
        'vllm:num_requests_running': {
            'name': 'vllm:num_requests_running',
            'type': 'gauge',
            'help': 'Number of requests in model execution batches.',
            'samples': [
                {'name': 'vllm:num_requests_running',
                 'labels': {'engine': '0', 'model_name': 'tiny'},
                 'value': 0.0,
                 'timestamp': None},
            ],
        },
        ...
    }

Plain dicts and lists only, so the result can be returned from a module
as it is. Samples of histograms and summaries (``_bucket``, ``_sum``,
``_count``, ``_created``) are filed under their family; a sample keeps its
own name. The helpers ``iter_samples()``, ``sample_values()``,
``first_value()``, ``sum_values()`` and ``sum_by()`` read samples by name
and label filter from the families, one family, or a list of samples.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


METRIC_TYPES = frozenset((
    'counter', 'gauge', 'histogram', 'summary', 'untyped',
    # OpenMetrics types, accepted so that a TYPE line naming them parses.
    'unknown', 'info', 'stateset', 'gaugehistogram',
))

# Suffixes of the samples that belong to a family of the given type.
_FAMILY_SUFFIXES = {
    'histogram': ('_bucket', '_sum', '_count', '_created'),
    'gaugehistogram': ('_bucket', '_gsum', '_gcount'),
    'summary': ('_sum', '_count', '_created'),
    'counter': ('_total', '_created'),
    'info': ('_info',),
}

_ALL_SUFFIXES = tuple(sorted(set(suffix for suffixes in _FAMILY_SUFFIXES.values() for suffix in suffixes)))

_METRIC_NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
_LABEL_NAME = r'[a-zA-Z_][a-zA-Z0-9_]*'

_METRIC_NAME_RE = re.compile(_METRIC_NAME)
_FULL_METRIC_NAME_RE = re.compile(r'^' + _METRIC_NAME + r'$')
_LABEL_NAME_RE = re.compile(_LABEL_NAME)
_SPACES_RE = re.compile(r'[ \t]*')
_FLOAT_RE = re.compile(
    r'^[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)$',
    re.IGNORECASE,
)
_TIMESTAMP_RE = re.compile(r'^-?[0-9]+$')
# "# HELP name text" / "# TYPE name type"; other comments do not match.
_DESCRIPTOR_RE = re.compile(r'^#[ \t]+(HELP|TYPE)(?:[ \t]+([^ \t]*)(?:[ \t]+(.*))?)?[ \t]*$')

_LABEL_ESCAPES = {'\\': '\\', '"': '"', 'n': '\n'}


class PrometheusParseError(ValueError):
    """A line of the exposition text is malformed.

    ``lineno`` is the 1-based line number, ``line`` the offending line.
    """

    def __init__(self, lineno, message, line=None):
        self.lineno = lineno
        self.reason = message
        self.line = line
        text = 'line %d: %s' % (lineno, message)
        if line is not None:
            text += ': %r' % (line if len(line) <= 200 else line[:200] + '...')
        super(PrometheusParseError, self).__init__(text)


def parse_value(text):
    """Parse a sample value: a float, ``+Inf``, ``-Inf`` or ``NaN``.

    Raises ValueError for anything else (Python's own extras, such as
    underscores in numbers, are refused).
    """
    if not _FLOAT_RE.match(text):
        raise ValueError('invalid sample value %r' % text)
    return float(text)


def _unescape_help(text):
    """HELP text escapes only backslash and newline."""
    if '\\' not in text:
        return text
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == '\\' and i + 1 < len(text) and text[i + 1] in ('\\', 'n'):
            out.append('\n' if text[i + 1] == 'n' else '\\')
            i += 2
            continue
        out.append(char)
        i += 1
    return ''.join(out)


def _parse_labels(line, pos, lineno):
    """Parse ``{name="value",...}`` starting after the ``{`` at ``pos``.

    Returns (labels, position after the closing brace).
    """
    labels = {}
    length = len(line)
    while True:
        pos = _SPACES_RE.match(line, pos).end()
        if pos >= length:
            raise PrometheusParseError(lineno, 'unterminated label set', line)
        if line[pos] == '}':
            return labels, pos + 1
        match = _LABEL_NAME_RE.match(line, pos)
        if not match:
            raise PrometheusParseError(lineno, 'invalid label name at column %d' % (pos + 1), line)
        name = match.group(0)
        pos = _SPACES_RE.match(line, match.end()).end()
        if pos >= length or line[pos] != '=':
            raise PrometheusParseError(lineno, "expected '=' after label name %r" % name, line)
        pos = _SPACES_RE.match(line, pos + 1).end()
        if pos >= length or line[pos] != '"':
            raise PrometheusParseError(lineno, 'expected a quoted value for label %r' % name, line)
        pos += 1
        value = []
        while True:
            if pos >= length:
                raise PrometheusParseError(lineno, 'unterminated value for label %r' % name, line)
            char = line[pos]
            if char == '"':
                pos += 1
                break
            if char == '\\':
                if pos + 1 >= length:
                    raise PrometheusParseError(lineno, 'unterminated value for label %r' % name, line)
                escaped = line[pos + 1]
                if escaped not in _LABEL_ESCAPES:
                    raise PrometheusParseError(
                        lineno, 'invalid escape sequence \\%s in value of label %r' % (escaped, name), line)
                value.append(_LABEL_ESCAPES[escaped])
                pos += 2
                continue
            value.append(char)
            pos += 1
        if name in labels:
            raise PrometheusParseError(lineno, 'duplicate label %r' % name, line)
        labels[name] = ''.join(value)
        pos = _SPACES_RE.match(line, pos).end()
        if pos >= length:
            raise PrometheusParseError(lineno, 'unterminated label set', line)
        if line[pos] == ',':
            pos += 1
        elif line[pos] == '}':
            continue
        else:
            raise PrometheusParseError(lineno, "expected ',' or '}' after value of label %r" % name, line)


def parse_sample_line(line, lineno=0):
    """Parse one sample line into a sample dict."""
    match = _METRIC_NAME_RE.match(line)
    if not match:
        raise PrometheusParseError(lineno, 'invalid metric name', line)
    name = match.group(0)
    pos = match.end()
    labels = {}
    if pos < len(line) and line[pos] == '{':
        labels, pos = _parse_labels(line, pos + 1, lineno)
    rest = line[pos:]
    if rest and rest[0] not in ' \t':
        raise PrometheusParseError(lineno, 'expected whitespace after metric name %r' % name, line)
    fields = rest.split()
    if not fields:
        raise PrometheusParseError(lineno, 'missing value for metric %r' % name, line)
    if len(fields) > 2:
        raise PrometheusParseError(lineno, 'unexpected text after value and timestamp of metric %r' % name, line)
    try:
        value = parse_value(fields[0])
    except ValueError:
        raise PrometheusParseError(lineno, 'invalid value %r for metric %r' % (fields[0], name), line)
    timestamp = None
    if len(fields) == 2:
        if not _TIMESTAMP_RE.match(fields[1]):
            raise PrometheusParseError(lineno, 'invalid timestamp %r for metric %r' % (fields[1], name), line)
        timestamp = int(fields[1])
    return {'name': name, 'labels': labels, 'value': value, 'timestamp': timestamp}


def _new_family(name, metric_type='untyped', help_text=None):
    return {'name': name, 'type': metric_type, 'help': help_text, 'samples': []}


def _family_for(families, sample_name):
    """Name of the declared family that a sample belongs to, or None."""
    if sample_name in families:
        return sample_name
    for suffix in _ALL_SUFFIXES:
        if sample_name.endswith(suffix):
            base = families.get(sample_name[:-len(suffix)])
            if base is not None and suffix in _FAMILY_SUFFIXES.get(base['type'], ()):
                return base['name']
    return None


def parse(text):
    """Parse Prometheus text exposition format.

    ``text`` is a str (bytes are decoded as UTF-8). Returns a dict
    of families keyed by family name, in the order they first appear. Each
    family is a dict with ``name``, ``type`` (``untyped`` when no TYPE line
    names it), ``help`` (None when no HELP line) and ``samples``, a list of
    dicts with ``name``, ``labels`` (dict), ``value`` (float) and
    ``timestamp`` (int milliseconds or None).

    Raises PrometheusParseError (a ValueError) naming the line number of the
    first malformed line.
    """
    if isinstance(text, bytes):
        text = text.decode('utf-8')
    families = {}
    typed = set()
    helped = set()
    for lineno, raw in enumerate(text.split('\n'), 1):
        line = raw.rstrip('\r')
        stripped = line.strip(' \t')
        if not stripped:
            continue
        if stripped.startswith('#'):
            match = _DESCRIPTOR_RE.match(stripped)
            if not match:
                continue  # an ordinary comment (or OpenMetrics "# EOF")
            keyword, name, rest = match.group(1), match.group(2), match.group(3) or ''
            if not name:
                raise PrometheusParseError(lineno, '%s line without a metric name' % keyword, line)
            if not _FULL_METRIC_NAME_RE.match(name):
                raise PrometheusParseError(lineno, 'invalid metric name %r in %s line' % (name, keyword), line)
            family = families.get(name)
            if family is None:
                family = families[name] = _new_family(name)
            if keyword == 'TYPE':
                metric_type = rest.strip(' \t')
                if not metric_type:
                    raise PrometheusParseError(lineno, 'TYPE line for %r without a type' % name, line)
                if metric_type.lower() not in METRIC_TYPES:
                    raise PrometheusParseError(lineno, 'unknown metric type %r for %r' % (metric_type, name), line)
                if name in typed:
                    raise PrometheusParseError(lineno, 'second TYPE line for metric %r' % name, line)
                if family['samples']:
                    raise PrometheusParseError(lineno, 'TYPE line for %r after its samples' % name, line)
                typed.add(name)
                family['type'] = metric_type.lower()
            else:
                if name in helped:
                    raise PrometheusParseError(lineno, 'second HELP line for metric %r' % name, line)
                helped.add(name)
                family['help'] = _unescape_help(rest.lstrip(' \t'))
            continue
        sample = parse_sample_line(stripped, lineno)
        family_name = _family_for(families, sample['name'])
        if family_name is None:
            family_name = sample['name']
            families[family_name] = _new_family(family_name)
        families[family_name]['samples'].append(sample)
    return families


def iter_samples(data):
    """Yield samples from parse() output, one family dict, or a list of samples (or of families)."""
    if isinstance(data, dict):
        if isinstance(data.get('samples'), list) and 'name' in data:
            yield from data['samples']
            return
        for family in data.values():
            yield from family['samples']
        return
    for item in data:
        if 'samples' in item:
            yield from item['samples']
        else:
            yield item


def find_samples(data, metric, /, **label_filter):
    """Samples called ``metric`` whose labels match every ``label=value`` given.

    Label filter values are compared as strings, so ``le=1.0`` matches the
    ``le="1.0"`` label. A filter value of None matches a sample that does
    not have that label.
    """
    wanted = dict((key, None if value is None else str(value)) for key, value in label_filter.items())
    found = []
    for sample in iter_samples(data):
        if sample['name'] != metric:
            continue
        labels = sample['labels']
        if all(labels.get(key) == value for key, value in wanted.items()):
            found.append(sample)
    return found


def sample_values(data, metric, /, **label_filter):
    """Values (floats) of the samples called ``metric`` that match the label filter."""
    return [sample['value'] for sample in find_samples(data, metric, **label_filter)]


def first_value(data, metric, /, default=None, **label_filter):
    """Value of the first matching sample, or ``default`` when none matches."""
    values = sample_values(data, metric, **label_filter)
    return values[0] if values else default


def sum_values(data, metric, /, default=None, **label_filter):
    """Sum of the matching samples' values, or ``default`` when none matches."""
    values = sample_values(data, metric, **label_filter)
    return sum(values) if values else default


def sum_by(data, metric, label, /, **label_filter):
    """Sum the matching samples grouped by the value of ``label``.

    Returns a dict of label value -> sum, in order of appearance.
    Samples without the label are grouped under the empty string.
    """
    grouped = {}
    for sample in find_samples(data, metric, **label_filter):
        key = sample['labels'].get(label, '')
        grouped[key] = grouped.get(key, 0.0) + sample['value']
    return grouped
