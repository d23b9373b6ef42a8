# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nvidia-smi parsers, on the fixtures in tests/unit/fixtures/nvidia-smi/
(hand-written from NVIDIA's documented formats; see the README there)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os

import pytest

from ansible_collections.llmops.vllm.plugins.module_utils import nvidia_smi
from ansible_collections.llmops.vllm.plugins.module_utils.nvidia_smi import NvidiaSmiParseError
from ansible_collections.llmops.vllm.tests.unit.conftest import FIXTURES_DIR, read_fixture

FIELDS_R470 = tuple(field for field in nvidia_smi.QUERY_FIELDS if field != 'compute_cap')


def fx(name):
    return read_fixture('nvidia-smi/' + name)


def test_eight_h100():
    gpus = nvidia_smi.parse_query(fx('handwritten-h100x8-query.csv'))
    assert [gpu['index'] for gpu in gpus] == list(range(8))
    assert {gpu['name'] for gpu in gpus} == {'NVIDIA H100 80GB HBM3'}
    assert all(gpu['memory_total_mib'] == 81559 for gpu in gpus)
    assert all(gpu['compute_cap'] == '9.0' for gpu in gpus)
    assert all(gpu['persistence_mode'] is True and gpu['mig_mode'] is False for gpu in gpus)
    assert gpus[3]['pci_bus_id'] == '00000000:5D:00.0'
    assert gpus[0]['uuid'] == 'GPU-3f1c2a7e-8b4d-4e21-9c0f-5a6b7c8d9e01'
    assert len({gpu['uuid'] for gpu in gpus}) == 8
    summary = nvidia_smi.summarize(gpus, nvidia_smi.parse_cuda_version(fx('handwritten-h100x8-banner.txt')))
    assert summary['count'] == 8
    assert summary['memory_total_mib'] == 8 * 81559
    assert summary['names'] == ['NVIDIA H100 80GB HBM3']
    assert summary['driver_version'] == '550.90.07'
    assert summary['cuda_version'] == '12.4'
    assert summary['persistence_mode_all'] is True
    assert summary['mig_enabled_count'] == 0
    assert summary['message'] == '8 NVIDIA GPUs: 8x NVIDIA H100 80GB HBM3 (driver 550.90.07, CUDA 12.4)'


def test_single_gpu_without_mig_support():
    gpus = nvidia_smi.parse_query(fx('handwritten-l4-single-query.csv'))
    assert len(gpus) == 1
    gpu = gpus[0]
    assert gpu['name'] == 'NVIDIA L4'
    assert gpu['memory_total_mib'] == 23034
    assert gpu['compute_cap'] == '8.9'
    assert gpu['persistence_mode'] is False
    # [N/A]: the L4 has no MIG; None, not False.
    assert gpu['mig_mode'] is None and gpu['mig_mode_pending'] is None
    summary = nvidia_smi.summarize(gpus, '12.2')
    assert summary['message'] == '1 NVIDIA GPU: 1x NVIDIA L4 (driver 535.183.01, CUDA 12.2)'
    assert summary['persistence_mode_all'] is False


def test_mig():
    gpus = nvidia_smi.parse_query(fx('handwritten-a100-mig-query.csv'))
    assert [gpu['mig_mode'] for gpu in gpus] == [True, False]
    assert [gpu['mig_mode_pending'] for gpu in gpus] == [True, True]
    listed = nvidia_smi.parse_gpu_list(fx('handwritten-a100-mig-list.txt'))
    assert set(listed) == {gpu['uuid'] for gpu in gpus}
    migs = listed[gpus[0]['uuid']]
    assert [mig['profile'] for mig in migs] == ['3g.40gb', '3g.40gb']
    assert [mig['device'] for mig in migs] == [0, 1]
    assert migs[1]['uuid'] == 'MIG-8e2b0f3a-1c4d-5f69-b7e3-0a1c2d3e4f22'
    assert listed[gpus[1]['uuid']] == []
    assert nvidia_smi.summarize(gpus, '12.8')['mig_enabled_count'] == 1


def test_gpu_list_of_r450_style_mig_uuids():
    # R450/R460 drivers named MIG devices MIG-GPU-<gpu uuid>/<gi>/<ci>.
    text = ('GPU 0: A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)\n'
            '  MIG 1g.5gb Device 0: (UUID: MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/7/0)\n')
    listed = nvidia_smi.parse_gpu_list(text)
    assert listed['GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77'][0]['uuid'] == 'MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/7/0'


def test_old_driver_without_compute_cap():
    assert nvidia_smi.invalid_field(fx('handwritten-old-driver-invalid-field.txt')) == 'compute_cap'
    gpus = nvidia_smi.parse_query(fx('handwritten-r470-query-without-compute-cap.csv'), FIELDS_R470)
    assert gpus[0]['compute_cap'] is None
    assert gpus[0]['name'] == 'Tesla V100-SXM2-32GB'
    assert nvidia_smi.parse_cuda_version(fx('handwritten-r470-banner.txt')) == '11.4'


@pytest.mark.parametrize('name, status', [
    ('handwritten-no-driver.txt', 'no_driver'),
    ('handwritten-no-devices.txt', 'no_devices'),
    ('handwritten-driver-mismatch.txt', 'driver_mismatch'),
])
def test_known_failures(name, status):
    assert nvidia_smi.classify_failure(fx(name))[0] == status


def test_unknown_failure_is_not_classified():
    assert nvidia_smi.classify_failure('Segmentation fault') is None


def test_malformed_row_names_the_line():
    with pytest.raises(NvidiaSmiParseError, match=r'expected 11 comma-separated values .* got 5 in line: 1, GPU-7a2e9d14'):
        nvidia_smi.parse_query(fx('handwritten-malformed-query.csv'))


@pytest.mark.parametrize('line, message', [
    ('x, GPU-3f1c2a7e-8b4d-4e21-9c0f-5a6b7c8d9e01, H100, [N/A], 81559, 550.90.07, 9.0, Enabled, Disabled, Disabled, Default',
     'index is'),
    ('0, 3f1c2a7e, H100, [N/A], 81559, 550.90.07, 9.0, Enabled, Disabled, Disabled, Default', 'uuid is'),
    ('0, GPU-3f1c2a7e-8b4d-4e21-9c0f-5a6b7c8d9e01, H100, [N/A], lots, 550.90.07, 9.0, Enabled, Disabled, Disabled, Default',
     'memory.total is'),
    ('0, GPU-3f1c2a7e-8b4d-4e21-9c0f-5a6b7c8d9e01, H100, [N/A], 81559, [N/A], 9.0, Enabled, Disabled, Disabled, Default',
     'driver_version is'),
    ('0, GPU-3f1c2a7e-8b4d-4e21-9c0f-5a6b7c8d9e01, H100, [N/A], 81559, 550.90.07, nine, Enabled, Disabled, Disabled, Default',
     'compute_cap is'),
    ('0, GPU-3f1c2a7e-8b4d-4e21-9c0f-5a6b7c8d9e01, H100, [N/A], 81559, 550.90.07, 9.0, Maybe, Disabled, Disabled, Default',
     'persistence_mode is'),
    ('Unable to determine the device handle for GPU0000:18:00.0: Unknown Error', 'comma-separated'),
])
def test_bad_values_are_rejected(line, message):
    with pytest.raises(NvidiaSmiParseError, match=message):
        nvidia_smi.parse_query(line + '\n')


def test_duplicate_index_and_empty_output():
    line = fx('handwritten-l4-single-query.csv')
    with pytest.raises(NvidiaSmiParseError, match='repeat'):
        nvidia_smi.parse_query(line + line)
    with pytest.raises(NvidiaSmiParseError, match='printed nothing'):
        nvidia_smi.parse_query('\n')


def test_memory_with_units_and_crlf():
    line = '0, GPU-6e1d0a3b-4f27-5c88-91e2-0b7c3d9a4f10, NVIDIA L4, 00000000:00:03.0, 23034 MiB, 535.183.01, 8.9, Disabled, [N/A], [N/A], Default\r\n'
    assert nvidia_smi.parse_query(line)[0]['memory_total_mib'] == 23034


def test_cuda_version_forms():
    assert nvidia_smi.parse_cuda_version('CUDA Version                              : 12.8\n') == '12.8'
    assert nvidia_smi.parse_cuda_version('| NVIDIA-SMI 550.90.07  Driver Version: 550.90.07  CUDA Version: N/A |') is None
    assert nvidia_smi.parse_cuda_version('') is None
    assert nvidia_smi.parse_banner_driver_version(fx('handwritten-l4-single-banner.txt')) == '535.183.01'


def test_gpu_list_rejects_garbage():
    with pytest.raises(NvidiaSmiParseError, match='unexpected line'):
        nvidia_smi.parse_gpu_list('GPU 0: H100\nsomething else\n')
    with pytest.raises(NvidiaSmiParseError, match='before any GPU'):
        nvidia_smi.parse_gpu_list('  MIG 3g.40gb     Device  0: (UUID: MIG-5c1a9e2d-7b3f-5e48-a6d2-9f0b1c2d3e21)\n')


def test_unavailable_facts():
    facts = nvidia_smi.unavailable('no_driver', 'no driver')
    assert facts['available'] is False and facts['count'] == 0 and facts['gpus'] == []
    with pytest.raises(ValueError):
        nvidia_smi.unavailable('ok', 'x')


CAPTURED = sorted(glob.glob(os.path.join(FIXTURES_DIR, 'nvidia-smi', 'captured-*-query.csv')))


@pytest.mark.skipif(not CAPTURED, reason='no nvidia-smi output captured on a real GPU host yet (see fixtures/nvidia-smi/README.md)')
@pytest.mark.parametrize('path', CAPTURED)
def test_captured_real_output(path):
    with open(path) as handle:
        gpus = nvidia_smi.parse_query(handle.read())
    assert gpus and all(gpu['uuid'].startswith('GPU-') and gpu['memory_total_mib'] > 0 for gpu in gpus)
