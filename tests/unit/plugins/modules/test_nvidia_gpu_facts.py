# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nvidia_gpu_facts against a stand-in nvidia-smi that answers with the
hand-written fixtures of tests/unit/fixtures/nvidia-smi/."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.llmops.vllm.plugins.modules import nvidia_gpu_facts
from ansible_collections.llmops.vllm.tests.unit.conftest import read_fixture
from ansible_collections.llmops.vllm.tests.unit.plugins.modules.utils import (
    AnsibleExitJson,
    AnsibleFailJson,
    run_module,
)

SMI = '/usr/bin/nvidia-smi'


def fx(name):
    return read_fixture('nvidia-smi/' + name)


class FakeNvidiaSmi:
    """Answers AnsibleModule.run_command like nvidia-smi would.

    ``query`` answers --query-gpu (rc, stdout); ``banner`` plain nvidia-smi;
    ``listing`` nvidia-smi -L. ``reject`` is a set of fields answered with the
    "not a valid field" error, as older drivers do. Calls are recorded."""

    def __init__(self, query=(0, ''), banner=(0, ''), listing=(0, ''), reject=()):
        self.query, self.banner, self.listing, self.reject = query, banner, listing, set(reject)
        self.calls = []

    def __call__(self, module, args, **kwargs):
        self.calls.append(list(args))
        assert args[0] == SMI
        assert kwargs.get('environ_update', {}).get('LC_ALL') == 'C'
        if len(args) == 1:
            rc, out = self.banner
        elif args[1] == '-L':
            rc, out = self.listing
        else:
            assert args[1].startswith('--query-gpu=') and args[2] == '--format=csv,noheader,nounits'
            fields = args[1][len('--query-gpu='):].split(',')
            for field in fields:
                if field in self.reject:
                    return 2, 'Field "%s" is not a valid field to query.\n\n' % field, ''
            rc, out = self.query
        return rc, out, ''


def run(fake, args=None, smi_path=SMI):
    """Run the module; the warnings it gave are in result.result['warnings']."""
    warnings = []
    with mock.patch.object(basic.AnsibleModule, 'run_command', autospec=True, side_effect=fake), \
            mock.patch.object(basic.AnsibleModule, 'get_bin_path', return_value=smi_path), \
            mock.patch.object(basic.AnsibleModule, 'warn', side_effect=warnings.append):
        result = run_module(nvidia_gpu_facts.main, args or {})
    result.result['warnings'] = warnings
    return result


def ok(result):
    assert isinstance(result, AnsibleExitJson), result.result
    assert result.result['changed'] is False
    facts = result.result['ansible_facts']['nvidia_gpus']
    # The fact and the top-level results are the same data.
    assert set(result.result) - set(facts) == {'changed', 'ansible_facts', 'warnings'}
    for key, value in facts.items():
        assert result.result[key] == value
    return result.result


def test_eight_gpus():
    fake = FakeNvidiaSmi(query=(0, fx('handwritten-h100x8-query.csv')), banner=(0, fx('handwritten-h100x8-banner.txt')))
    result = ok(run(fake))
    assert result['available'] is True and result['status'] == 'ok'
    assert result['count'] == 8
    assert result['memory_total_mib'] == 652472
    assert result['driver_version'] == '550.90.07'
    assert result['cuda_version'] == '12.4'
    assert result['nvidia_smi'] == SMI
    assert result['gpus'][7]['pci_bus_id'] == '00000000:DB:00.0'
    # No GPU has MIG enabled: nvidia-smi -L is not run.
    assert [call[1] if len(call) > 1 else '' for call in fake.calls] == [
        '--query-gpu=' + ','.join(nvidia_gpu_facts.QUERY_FIELDS), '']


def test_single_gpu_in_check_mode():
    fake = FakeNvidiaSmi(query=(0, fx('handwritten-l4-single-query.csv')), banner=(0, fx('handwritten-l4-single-banner.txt')))
    result = ok(run(fake, {'_ansible_check_mode': True}))
    assert result['count'] == 1 and result['names'] == ['NVIDIA L4'] and result['cuda_version'] == '12.2'
    assert result['gpus'][0]['mig_mode'] is None


def test_mig_devices_listed():
    fake = FakeNvidiaSmi(query=(0, fx('handwritten-a100-mig-query.csv')), banner=(0, fx('handwritten-a100-mig-banner.txt')),
                         listing=(0, fx('handwritten-a100-mig-list.txt')))
    result = ok(run(fake))
    assert ['-L'] in [call[1:] for call in fake.calls]
    assert result['mig_enabled_count'] == 1
    assert [mig['uuid'] for mig in result['gpus'][0]['mig_devices']] == [
        'MIG-5c1a9e2d-7b3f-5e48-a6d2-9f0b1c2d3e21', 'MIG-8e2b0f3a-1c4d-5f69-b7e3-0a1c2d3e4f22']
    assert result['gpus'][1]['mig_devices'] == []


def test_mig_listing_can_be_turned_off():
    fake = FakeNvidiaSmi(query=(0, fx('handwritten-a100-mig-query.csv')))
    result = ok(run(fake, {'mig_devices': False, 'cuda_version': False}))
    assert len(fake.calls) == 1
    assert result['cuda_version'] is None
    assert result['gpus'][0]['mig_devices'] == []


def test_old_driver_retries_without_the_rejected_field():
    fake = FakeNvidiaSmi(query=(0, fx('handwritten-r470-query-without-compute-cap.csv')),
                         banner=(0, fx('handwritten-r470-banner.txt')), reject={'compute_cap'})
    result = ok(run(fake))
    assert 'compute_cap' in fake.calls[0][1] and 'compute_cap' not in fake.calls[1][1]
    assert result['gpus'][0]['compute_cap'] is None
    assert result['cuda_version'] == '11.4'
    assert any('compute_cap' in warning for warning in result['warnings'])


def test_no_nvidia_smi():
    result = ok(run(FakeNvidiaSmi(), smi_path=None))
    assert result['available'] is False
    assert result['status'] == 'no_nvidia_smi'
    assert result['nvidia_smi'] is None
    assert result['count'] == 0 and result['gpus'] == []


@pytest.mark.parametrize('name, rc, status, words', [
    ('handwritten-no-driver.txt', 9, 'no_driver', 'kernel driver is not loaded'),
    ('handwritten-no-devices.txt', 6, 'no_devices', 'found no GPU'),
    ('handwritten-driver-mismatch.txt', 18, 'driver_mismatch', 'Driver/library version mismatch'),
])
def test_host_states_are_results_not_failures(name, rc, status, words):
    fake = FakeNvidiaSmi(query=(rc, fx(name)))
    result = ok(run(fake))
    assert result['available'] is False
    assert result['status'] == status
    assert words in result['message']
    assert len(fake.calls) == 1


def test_malformed_output_fails_clearly():
    fake = FakeNvidiaSmi(query=(0, fx('handwritten-malformed-query.csv')), banner=(0, fx('handwritten-h100x8-banner.txt')))
    result = run(fake)
    assert isinstance(result, AnsibleFailJson)
    assert 'Cannot read the output of /usr/bin/nvidia-smi --query-gpu' in result.result['msg']
    assert 'got 5 in line: 1, GPU-7a2e9d14' in result.result['msg']


def test_unknown_failure_fails_with_rc():
    result = run(FakeNvidiaSmi(query=(255, 'Segmentation fault')))
    assert isinstance(result, AnsibleFailJson)
    assert 'rc=255' in result.result['msg'] and 'Segmentation fault' in result.result['msg']


def test_missing_banner_only_warns():
    fake = FakeNvidiaSmi(query=(0, fx('handwritten-l4-single-query.csv')), banner=(9, fx('handwritten-no-driver.txt')))
    result = ok(run(fake))
    assert result['cuda_version'] is None and result['count'] == 1
    assert any('CUDA version' in warning for warning in result['warnings'])


def test_malformed_mig_listing_fails():
    fake = FakeNvidiaSmi(query=(0, fx('handwritten-a100-mig-query.csv')), banner=(0, fx('handwritten-a100-mig-banner.txt')),
                         listing=(0, 'GPU 0: A100 (UUID: GPU-a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c11)\ngarbage\n'))
    result = run(fake)
    assert isinstance(result, AnsibleFailJson)
    assert '-L' in result.result['msg'] and 'garbage' in result.result['msg']
