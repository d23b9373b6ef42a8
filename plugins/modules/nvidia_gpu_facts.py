#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, llmops.vllm maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_gpu_facts
short_description: Read the NVIDIA GPUs of a host from nvidia-smi
version_added: 0.1.0
author: llmops.vllm maintainers (!UNKNOWN)
description:
  - Runs C(nvidia-smi --query-gpu=... --format=csv,noheader,nounits) and returns one dict per GPU
    (index, UUID, name, PCI bus id, memory, driver version, compute capability, persistence, MIG and
    compute mode) and a summary (count, total memory, names, driver and CUDA version).
  - The CUDA version is the highest one the driver supports, read from the banner of plain C(nvidia-smi).
  - For GPUs in MIG mode it also runs C(nvidia-smi -L) and lists their MIG devices with their C(MIG-...)
    UUIDs, the values E(CUDA_VISIBLE_DEVICES) takes for them.
  - A host without nvidia-smi, without a loaded driver, without a GPU or with a driver/library version
    mismatch is not a failure; the module returns RV(available=false) and a RV(status) that says which.
  - Output nvidia-smi prints that this module cannot parse fails the module with the offending line.
  - The results are also returned as the fact C(nvidia_gpus).
options:
  nvidia_smi:
    description:
      - Path of the nvidia-smi binary.
      - By default it is searched in E(PATH), C(/usr/bin) and C(/usr/local/nvidia/bin).
    type: path
  cuda_version:
    description:
      - Whether to run plain C(nvidia-smi) to read the CUDA version from its banner.
    type: bool
    default: true
  mig_devices:
    description:
      - Whether to run C(nvidia-smi -L) to list the MIG devices of GPUs in MIG mode.
      - It runs only when at least one GPU has MIG mode enabled.
    type: bool
    default: true
extends_documentation_fragment:
  - llmops.vllm.attributes
  - llmops.vllm.attributes.info_module
  - llmops.vllm.attributes.facts
notes:
  - Older drivers reject some fields (C(compute_cap) before R510); the query is then retried without the
    rejected optional field and the field is returned as V(null).
  - The output of nvidia-smi is not guaranteed to be stable across driver releases; the parser checks every
    value and fails with the line it could not read rather than returning wrong facts.
seealso:
  - name: nvidia-smi documentation
    description: NVIDIA System Management Interface, including the list of C(--query-gpu) fields.
    link: https://docs.nvidia.com/deploy/nvidia-smi/index.html
"""

EXAMPLES = r"""
- name: Read the GPUs
  llmops.vllm.nvidia_gpu_facts:

- name: Show them
  ansible.builtin.debug:
    msg: "{{ ansible_facts.nvidia_gpus.count }} GPUs, {{ ansible_facts.nvidia_gpus.memory_total_mib }} MiB"
  when: ansible_facts.nvidia_gpus.available

- name: Fail when the driver was upgraded but the host not rebooted
  ansible.builtin.assert:
    that: ansible_facts.nvidia_gpus.status != 'driver_mismatch'
    fail_msg: "{{ ansible_facts.nvidia_gpus.message }}"

- name: CUDA_VISIBLE_DEVICES for an instance on the first two GPUs
  ansible.builtin.set_fact:
    first_pair: "{{ ansible_facts.nvidia_gpus.gpus[:2] | map(attribute='index') | join(',') }}"
  when: ansible_facts.nvidia_gpus.count >= 2
"""

RETURN = r"""
available:
  description: Whether nvidia-smi listed at least one GPU.
  returned: always
  type: bool
  sample: true
status:
  description:
    - V(ok) when nvidia-smi listed the GPUs.
    - V(no_nvidia_smi) when nvidia-smi is not installed, V(no_driver) when the kernel driver is not loaded,
      V(no_devices) when the driver found no GPU, V(driver_mismatch) when the loaded kernel module and the
      user-space driver differ (reboot after an upgrade), V(nvml_error) for other NVML initialisation failures.
  returned: always
  type: str
  choices: [ok, no_nvidia_smi, no_driver, no_devices, driver_mismatch, nvml_error]
  sample: ok
message:
  description: "One line for humans, e.g. C(8 NVIDIA GPUs: 8x NVIDIA H100 80GB HBM3 (driver 550.90.07, CUDA 12.4))."
  returned: always
  type: str
nvidia_smi:
  description: Path of the nvidia-smi that was run, V(null) when none was found.
  returned: always
  type: str
  sample: /usr/bin/nvidia-smi
count:
  description: Number of physical GPUs.
  returned: always
  type: int
  sample: 8
memory_total_mib:
  description: Total memory of all GPUs, in MiB.
  returned: always
  type: int
  sample: 652472
names:
  description: Distinct GPU product names, in index order.
  returned: always
  type: list
  elements: str
  sample: [NVIDIA H100 80GB HBM3]
uuids:
  description: GPU UUIDs in index order.
  returned: always
  type: list
  elements: str
driver_version:
  description: Driver version (several, comma-separated, if the GPUs disagree). V(null) when unavailable.
  returned: always
  type: str
  sample: 550.90.07
cuda_version:
  description: Highest CUDA version the driver supports. V(null) when unknown or not read.
  returned: always
  type: str
  sample: "12.4"
mig_enabled_count:
  description: Number of GPUs whose current MIG mode is enabled.
  returned: always
  type: int
  sample: 0
persistence_mode_all:
  description: Whether every GPU has persistence mode enabled.
  returned: always
  type: bool
gpus:
  description: One dict per GPU, in index order.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: nvidia-smi index (the CUDA ordinal unless CUDA_DEVICE_ORDER says otherwise).
      type: int
    uuid:
      description: GPU UUID.
      type: str
    name:
      description: Product name.
      type: str
    pci_bus_id:
      description: PCI bus id, e.g. C(00000000:18:00.0).
      type: str
    memory_total_mib:
      description: Memory in MiB.
      type: int
    driver_version:
      description: Driver version.
      type: str
    compute_cap:
      description: CUDA compute capability, e.g. C(9.0). V(null) on drivers that do not report it.
      type: str
    persistence_mode:
      description: Persistence mode. V(null) when not reported.
      type: bool
    mig_mode:
      description: Current MIG mode. V(null) on GPUs without MIG.
      type: bool
    mig_mode_pending:
      description: MIG mode after the next GPU reset. V(null) on GPUs without MIG.
      type: bool
    compute_mode:
      description: Compute mode, e.g. C(Default) or C(Exclusive_Process).
      type: str
    mig_devices:
      description: MIG devices of this GPU (empty unless MIG is enabled), each with C(profile), C(device) and C(uuid).
      type: list
      elements: dict
ansible_facts:
  description: The same results, under the fact name C(nvidia_gpus).
  returned: always
  type: dict
  contains:
    nvidia_gpus:
      description: Every other return value of this module, as one dict.
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.vllm.plugins.module_utils.nvidia_smi import (
    OPTIONAL_FIELDS,
    QUERY_FIELDS,
    NvidiaSmiParseError,
    classify_failure,
    invalid_field,
    parse_cuda_version,
    parse_gpu_list,
    parse_query,
    summarize,
    unavailable,
)

_ARGUMENT_SPEC = dict(
    nvidia_smi=dict(type='path'),
    cuda_version=dict(type='bool', default=True),
    mig_devices=dict(type='bool', default=True),
)

_SEARCH_DIRS = ['/usr/bin', '/usr/local/nvidia/bin', '/usr/local/bin']


class NvidiaGpuFacts(object):

    def __init__(self, module):
        self.module = module
        self.warnings = []

    def _run(self, args):
        rc, out, err = self.module.run_command(args, environ_update={'LC_ALL': 'C'})
        return rc, out or '', err or ''

    def _fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    def _query(self, smi):
        """Run the CSV query; drop optional fields an older nvidia-smi rejects.
        Returns (fields, stdout) or (None, (rc, stdout, stderr)) on a failure."""
        fields = list(QUERY_FIELDS)
        while True:
            args = [smi, '--query-gpu=' + ','.join(fields), '--format=csv,noheader,nounits']
            rc, out, err = self._run(args)
            if rc == 0:
                return fields, out
            rejected = invalid_field(out + err)
            if rejected and rejected in fields and rejected in OPTIONAL_FIELDS:
                self.warnings.append('nvidia-smi does not know the field %s; it is returned as null' % rejected)
                fields.remove(rejected)
                continue
            return None, (rc, out, err)

    def execute(self):
        smi = self.module.params['nvidia_smi'] or self.module.get_bin_path('nvidia-smi', opt_dirs=_SEARCH_DIRS)
        if not smi:
            return self._exit(unavailable('no_nvidia_smi', 'nvidia-smi is not installed (no NVIDIA driver user-space tools)'), None)

        fields, result = self._query(smi)
        if fields is None:
            rc, out, err = result
            known = classify_failure(out + '\n' + err)
            if known is None:
                self._fail('%s --query-gpu failed with rc=%d: %s' % (smi, rc, (err or out).strip() or '(no output)'),
                           rc=rc, stdout=out, stderr=err)
            status, explanation = known
            text = (out.strip() or err.strip()).splitlines()[0]
            return self._exit(unavailable(status, 'No usable NVIDIA GPU: %s (nvidia-smi: %s)' % (explanation, text)), smi)

        try:
            gpus = parse_query(result, fields)
        except NvidiaSmiParseError as exc:
            self._fail('Cannot read the output of %s --query-gpu: %s' % (smi, exc), stdout=result)

        cuda = None
        if self.module.params['cuda_version']:
            rc, out, err = self._run([smi])
            cuda = parse_cuda_version(out) if rc == 0 else None
            if cuda is None:
                self.warnings.append('could not read the CUDA version from the banner of %s (rc=%d)' % (smi, rc))

        if self.module.params['mig_devices'] and any(gpu['mig_mode'] for gpu in gpus):
            rc, out, err = self._run([smi, '-L'])
            if rc != 0:
                self._fail('%s -L failed with rc=%d: %s' % (smi, rc, (err or out).strip()), rc=rc, stdout=out, stderr=err)
            try:
                listed = parse_gpu_list(out)
            except NvidiaSmiParseError as exc:
                self._fail('Cannot read the output of %s -L: %s' % (smi, exc), stdout=out)
            for gpu in gpus:
                gpu['mig_devices'] = listed.get(gpu['uuid'], [])

        return self._exit(summarize(gpus, cuda), smi)

    def _exit(self, facts, smi):
        facts['nvidia_smi'] = smi
        result = dict(facts)
        result['changed'] = False
        result['ansible_facts'] = {'nvidia_gpus': facts}
        for warning in self.warnings:
            self.module.warn(warning)
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(argument_spec=_ARGUMENT_SPEC, supports_check_mode=True)
    NvidiaGpuFacts(module).execute()


if __name__ == '__main__':
    main()
