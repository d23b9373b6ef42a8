# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers for the output of NVIDIA's ``nvidia-smi``.

This module util is PRIVATE to the llmops.vllm collection: its interface may
change without notice.

It reads three outputs of nvidia-smi:

* ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits``: one line
  per physical GPU, values separated by ``", "``; values a GPU does not report
  are ``[N/A]`` or ``[Not Supported]``;
* the banner of plain ``nvidia-smi`` (``... Driver Version: 550.90.07  CUDA
  Version: 12.4 ...``) or of ``nvidia-smi -q`` (``CUDA Version : 12.4``), the
  only place nvidia-smi reports the highest CUDA version the driver supports;
* ``nvidia-smi -L``: GPUs and, under each GPU in MIG mode, its MIG devices and
  their ``MIG-...`` UUIDs (the values CUDA_VISIBLE_DEVICES takes for them).

And it classifies the messages nvidia-smi prints when it cannot work (no
driver, no device, driver/library version mismatch), which are states of a
host, not errors of this code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Fields asked for, in this order. Names are those of `nvidia-smi --help-query-gpu`.
QUERY_FIELDS = (
    'index',
    'uuid',
    'name',
    'pci.bus_id',
    'memory.total',
    'driver_version',
    'compute_cap',
    'persistence_mode',
    'mig.mode.current',
    'mig.mode.pending',
    'compute_mode',
)

# Fields an older nvidia-smi may reject ("... is not a valid field to query");
# the query is retried without them. compute_cap appeared in the R510 drivers.
OPTIONAL_FIELDS = (
    'pci.bus_id',
    'compute_cap',
    'persistence_mode',
    'mig.mode.current',
    'mig.mode.pending',
    'compute_mode',
)

# Values nvidia-smi prints for a field the GPU or driver does not report.
_NOT_AVAILABLE = ('', 'N/A', '[N/A]', '[Not Supported]', '[Unknown Error]', '[Insufficient Permissions]', '[GPU is lost]')

_UUID_RE = re.compile(r'^GPU-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$')
_INVALID_FIELD_RE = re.compile(r'"([^"]+)" is not a valid field to query')
_CUDA_RE = re.compile(r'CUDA Version\s*:\s*([0-9]+\.[0-9]+(?:\.[0-9]+)?|N/A)')
_DRIVER_RE = re.compile(r'Driver Version\s*:\s*([0-9][0-9.]*)')
_LIST_GPU_RE = re.compile(r'^GPU\s+(\d+):\s+(.*?)\s+\(UUID:\s*(GPU-[^)\s]+)\)\s*$')
_LIST_MIG_RE = re.compile(r'^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s+\(UUID:\s*(MIG-[^)\s]+)\)\s*$')

# Host states nvidia-smi reports on failure: (status, text it prints, explanation).
_FAILURES = (
    ('driver_mismatch', 'Driver/library version mismatch',
     'the loaded NVIDIA kernel module and the installed user-space driver differ '
     '(typically after a driver upgrade without a reboot)'),
    ('no_driver', "couldn't communicate with the NVIDIA driver",
     'the NVIDIA kernel driver is not loaded or not installed'),
    ('no_devices', 'No devices were found',
     'the NVIDIA driver is loaded but found no GPU'),
    ('nvml_error', 'Failed to initialize NVML',
     'NVML could not be initialized'),
)

STATUSES = ('ok', 'no_nvidia_smi') + tuple(status for status, dummy, dummy2 in _FAILURES)


class NvidiaSmiParseError(ValueError):
    """nvidia-smi answered, but not in the format this parser knows."""


def _lines(text):
    return [line.rstrip('\r') for line in (text or '').splitlines() if line.strip()]


def invalid_field(text):
    """The field nvidia-smi rejected as "not a valid field to query", or None."""
    match = _INVALID_FIELD_RE.search(text or '')
    return match.group(1) if match else None


def classify_failure(text):
    """For the output of a failed nvidia-smi run, return (status, explanation),
    or None when the output is none of the known host states."""
    for status, needle, explanation in _FAILURES:
        if needle.lower() in (text or '').lower():
            return status, explanation
    return None


def _value(raw):
    raw = raw.strip()
    return None if raw in _NOT_AVAILABLE else raw


def _enabled(raw, field, line):
    value = _value(raw)
    if value is None:
        return None
    if value.lower() == 'enabled':
        return True
    if value.lower() == 'disabled':
        return False
    raise NvidiaSmiParseError('%s is %r, expected Enabled, Disabled or [N/A], in line: %s' % (field, value, line))


def _mib(raw, line):
    value = _value(raw)
    if value is None:
        return None
    # With nounits the value is "81559"; without it, "81559 MiB".
    number = value[:-4].strip() if value.endswith(' MiB') else value
    if not re.match(r'^\d+$', number):
        raise NvidiaSmiParseError('memory.total is %r, expected MiB as an integer, in line: %s' % (value, line))
    return int(number)


def parse_query(text, fields=QUERY_FIELDS):
    """Parse ``--query-gpu=<fields> --format=csv,noheader,nounits`` output into a
    list of GPU dicts, in index order. Raises NvidiaSmiParseError when a line
    does not have one value per field or a value is not of its field's type."""
    fields = tuple(fields)
    for required in ('index', 'uuid', 'name', 'memory.total', 'driver_version'):
        if required not in fields:
            raise ValueError('parse_query needs the field %s' % required)
    gpus = []
    lines = _lines(text)
    if not lines:
        raise NvidiaSmiParseError('nvidia-smi --query-gpu printed nothing')
    for line in lines:
        # Values are separated by ", "; no value of these fields contains one.
        values = [value.strip() for value in line.split(', ')]
        if len(values) != len(fields):
            raise NvidiaSmiParseError(
                'expected %d comma-separated values (%s), got %d in line: %s'
                % (len(fields), ','.join(fields), len(values), line))
        row = dict(zip(fields, values))
        if not re.match(r'^\d+$', row['index']):
            raise NvidiaSmiParseError('index is %r, expected an integer, in line: %s' % (row['index'], line))
        if not _UUID_RE.match(row['uuid']):
            raise NvidiaSmiParseError('uuid is %r, expected GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, in line: %s' % (row['uuid'], line))
        if not row['name'] or _value(row['name']) is None:
            raise NvidiaSmiParseError('name is empty in line: %s' % line)
        driver = _value(row['driver_version'])
        if driver is None or not re.match(r'^\d+(\.\d+)+$', driver):
            raise NvidiaSmiParseError('driver_version is %r, expected a version, in line: %s' % (row['driver_version'], line))
        compute_cap = _value(row.get('compute_cap', ''))
        if compute_cap is not None and not re.match(r'^\d+\.\d+$', compute_cap):
            raise NvidiaSmiParseError('compute_cap is %r, expected major.minor, in line: %s' % (compute_cap, line))
        gpus.append({
            'index': int(row['index']),
            'uuid': row['uuid'],
            'name': row['name'],
            'pci_bus_id': _value(row.get('pci.bus_id', '')),
            'memory_total_mib': _mib(row['memory.total'], line),
            'driver_version': driver,
            'compute_cap': compute_cap,
            'persistence_mode': _enabled(row.get('persistence_mode', ''), 'persistence_mode', line),
            'mig_mode': _enabled(row.get('mig.mode.current', ''), 'mig.mode.current', line),
            'mig_mode_pending': _enabled(row.get('mig.mode.pending', ''), 'mig.mode.pending', line),
            'compute_mode': _value(row.get('compute_mode', '')),
            'mig_devices': [],
        })
    indexes = [gpu['index'] for gpu in gpus]
    if len(set(indexes)) != len(indexes):
        raise NvidiaSmiParseError('GPU indexes repeat: %s' % ', '.join(str(i) for i in indexes))
    return sorted(gpus, key=lambda gpu: gpu['index'])


def parse_cuda_version(text):
    """The CUDA version from the banner of ``nvidia-smi`` or ``nvidia-smi -q``;
    None when it is absent or N/A."""
    match = _CUDA_RE.search(text or '')
    if not match or match.group(1) == 'N/A':
        return None
    return match.group(1)


def parse_banner_driver_version(text):
    """The driver version from the banner of ``nvidia-smi`` or ``nvidia-smi -q``, or None."""
    match = _DRIVER_RE.search(text or '')
    return match.group(1) if match else None


def parse_gpu_list(text):
    """Parse ``nvidia-smi -L``: return {gpu_uuid: [mig device dicts]} with an
    entry (possibly empty) for every GPU listed. A MIG device dict has
    ``profile`` (e.g. ``3g.40gb``), ``device`` (its index within the GPU) and
    ``uuid`` (``MIG-...``)."""
    result = {}
    current = None
    for line in _lines(text):
        gpu = _LIST_GPU_RE.match(line)
        if gpu:
            current = gpu.group(3)
            result[current] = []
            continue
        mig = _LIST_MIG_RE.match(line)
        if mig:
            if current is None:
                raise NvidiaSmiParseError('MIG device listed before any GPU: %s' % line.strip())
            result[current].append({'profile': mig.group(1), 'device': int(mig.group(2)), 'uuid': mig.group(3)})
            continue
        raise NvidiaSmiParseError('unexpected line in nvidia-smi -L output: %s' % line.strip())
    return result


def summarize(gpus, cuda_version=None):
    """Facts for a host whose nvidia-smi listed ``gpus`` (from parse_query)."""
    names = []
    for gpu in gpus:
        if gpu['name'] not in names:
            names.append(gpu['name'])
    drivers = sorted(set(gpu['driver_version'] for gpu in gpus))
    counts = {}
    for gpu in gpus:
        counts[gpu['name']] = counts.get(gpu['name'], 0) + 1
    described = ', '.join('%dx %s' % (counts[name], name) for name in names)
    return {
        'available': bool(gpus),
        'status': 'ok',
        'message': '%d NVIDIA GPU%s: %s (driver %s, CUDA %s)' % (
            len(gpus), '' if len(gpus) == 1 else 's', described,
            ', '.join(drivers) or 'unknown', cuda_version or 'unknown'),
        'count': len(gpus),
        'gpus': gpus,
        'uuids': [gpu['uuid'] for gpu in gpus],
        'names': names,
        'memory_total_mib': sum(gpu['memory_total_mib'] or 0 for gpu in gpus),
        'driver_version': drivers[0] if len(drivers) == 1 else (', '.join(drivers) or None),
        'cuda_version': cuda_version,
        'mig_enabled_count': sum(1 for gpu in gpus if gpu['mig_mode']),
        'persistence_mode_all': bool(gpus) and all(gpu['persistence_mode'] for gpu in gpus),
    }


def unavailable(status, message):
    """Facts for a host where no GPU can be used through nvidia-smi."""
    if status not in STATUSES or status == 'ok':
        raise ValueError('not a failure status: %s' % status)
    return {
        'available': False,
        'status': status,
        'message': message,
        'count': 0,
        'gpus': [],
        'uuids': [],
        'names': [],
        'memory_total_mib': 0,
        'driver_version': None,
        'cuda_version': None,
        'mig_enabled_count': 0,
        'persistence_mode_all': False,
    }
